using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace Tandem.Server.Tests.Browser;

/// <summary>
/// The dashboard at <c>/</c> in Debian's Chromium, against the service on a
/// real loopback Kestrel with the demo collection and its load generator
/// running (the generator calls the server's own listening address).
/// </summary>
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    private const string TopK = "similarity.topk";

    // Generous for a shared two-core machine; a healthy run needs a few seconds per wait.
    private const float WaitLimitMs = 30_000;

    // Rate of one kernel on one backend in a snapshot (the split sums all kernels).
    private const string RateFunction =
        "(s, kernel, backend) => s.throughput.filter(r => r.kernel === kernel && r.backend === backend).reduce((sum, r) => sum + r.perSecond, 0)";

    // True once the last `runs` snapshots newer than `since` show `kernel` on `serving` only.
    private const string ServedOnlyBy = $$"""
        ([kernel, serving, other, since, runs]) => {
          const rate = {{RateFunction}};
          const recent = (window.tandemDashboard?.snapshots ?? []).filter(s => Date.parse(s.time) > since).slice(-runs);
          return recent.length === runs && recent.every(s => rate(s, kernel, serving) > 0 && rate(s, kernel, other) === 0);
        }
        """;

    [Fact]
    public async Task Dashboard_TopKRoutedToManagedAndBack_ThroughputFollowsTheBackend()
    {
        await using var server = CreateSut();
        var address = server.ClientOptions.BaseAddress;
        var problems = new ConcurrentQueue<string>();
        string profile;
        await using (var chromium = await DebianChromium.LaunchAsync())
        {
            profile = chromium.ProfileDirectory;
            var page = await chromium.PageAsync();
            page.SetDefaultTimeout(WaitLimitMs);
            WatchForProblems(page, problems);

            await page.GotoAsync(new Uri(address, $"/#token={Uri.EscapeDataString(ServerFactory.AdminToken)}").ToString());

            await Expect(page.GetByTestId("live-indicator")).ToHaveAttributeAsync("data-state", "live", new() { Timeout = WaitLimitMs });
            await WaitForAsync(page, $"() => window.tandemDashboard?.latest && ({RateFunction})(window.tandemDashboard.latest, '{TopK}', 'native') > 0");
            await ExpectSplitAsync(page, "native");
            await ExpectSnapshotsToArriveAsync(page);
            await Expect(page.Locator("[data-testid=throughput-chart] .uplot canvas").First).ToBeVisibleAsync(new() { Timeout = WaitLimitMs });
            await Expect(page.Locator("[data-testid=throughput-chart] .chart-empty")).ToBeHiddenAsync(new() { Timeout = WaitLimitMs });
            await page.ScreenshotAsync(new() { Path = TestArtifacts.PathOf("dashboard.png"), FullPage = true });

            await RouteTopKAsync(page, "managed");
            await ExpectTopKServedOnlyByAsync(page, "managed", "native");
            await ExpectSplitAsync(page, "managed");
            // Pricing and hashing still run natively: only the top-k kernel moved.
            await ExpectSplitAsync(page, "native");
            await page.ScreenshotAsync(new() { Path = TestArtifacts.PathOf("dashboard-managed.png"), FullPage = true });

            await RouteTopKAsync(page, "native");
            await ExpectTopKServedOnlyByAsync(page, "native", "managed");

            Assert.Empty(problems);
        }

        Assert.Empty(ProcessesNaming(profile));
        Assert.False(Directory.Exists(profile), $"the browser profile {profile} was left behind");
    }

    private static ServerFactory CreateSut()
    {
        var server = new ServerFactory(new Dictionary<string, string?>
        {
            ["Server:Demo:Enabled"] = "true",
            ["Server:Demo:Vectors"] = "20000",
            ["Server:Demo:Dimension"] = "64",
            ["Server:Demo:Load"] = "true",
            ["Server:Demo:TargetPerSecond"] = "100",
            ["Server:Demo:Concurrency"] = "2",
            ["Server:Dashboard:Interval"] = "00:00:00.500",
        });
        // The demo load generator calls the first address the server listens
        // on, so this needs real sockets: Kestrel on 127.0.0.1, a free port.
        server.UseKestrel(0);
        server.StartServer();
        return server;
    }

    private void WatchForProblems(IPage page, ConcurrentQueue<string> problems)
    {
        page.Console += (_, message) =>
        {
            output.WriteLine($"console.{message.Type}: {message.Text}");
            if (message.Type == "error")
            {
                problems.Enqueue($"console error: {message.Text} ({message.Location})");
            }
        };
        page.PageError += (_, error) =>
        {
            output.WriteLine($"page error: {error}");
            problems.Enqueue($"page error: {error}");
        };
    }

    /// <summary>Picks <paramref name="backend"/> in the top-k backend select, as a user would, and checks the admin call it makes.</summary>
    private static async Task RouteTopKAsync(IPage page, string backend)
    {
        var response = await page.RunAndWaitForResponseAsync(
            () => page.GetByTestId($"backend-select-{TopK}").SelectOptionAsync(backend),
            r => r.Request.Method == "PUT" && r.Url.EndsWith($"/admin/kernels/{TopK}", StringComparison.Ordinal),
            new() { Timeout = WaitLimitMs });

        Assert.Equal((int)HttpStatusCode.OK, response.Status);
        await Expect(page.GetByTestId("status-line")).ToHaveTextAsync($"Route {TopK} to {backend}: done", new() { Timeout = WaitLimitMs });
        await Expect(page.GetByTestId($"backend-select-{TopK}")).ToHaveValueAsync(backend, new() { Timeout = WaitLimitMs });
    }

    private static async Task ExpectSnapshotsToArriveAsync(IPage page)
    {
        var count = int.Parse(await page.GetByTestId("snapshot-count").InnerTextAsync(), CultureInfo.InvariantCulture);
        await WaitForAsync(page, "seen => Number(document.querySelector('[data-testid=snapshot-count]').textContent) >= seen + 3", count);
    }

    /// <summary>Waits until the backend split shows calls on <paramref name="backend"/>.</summary>
    private static Task ExpectSplitAsync(IPage page, string backend) =>
        WaitForAsync(page, $"() => Number(document.querySelector('[data-testid=backend-split]').dataset.{backend}) > 0");

    /// <summary>
    /// Waits for three snapshots, all newer than the one shown now, with top-k
    /// calls on <paramref name="serving"/> and none on <paramref name="other"/>
    /// (the first windows after a switch may still finish calls on the old backend).
    /// </summary>
    private static async Task ExpectTopKServedOnlyByAsync(IPage page, string serving, string other)
    {
        var since = await page.EvaluateAsync<double>("() => Date.parse(window.tandemDashboard.latest.time)");
        await WaitForAsync(page, ServedOnlyBy, new object[] { TopK, serving, other, since, 3 });
    }

    private static Task WaitForAsync(IPage page, string function, object? argument = null) =>
        page.WaitForFunctionAsync(function, argument, new() { Timeout = WaitLimitMs, PollingInterval = 100 });

    /// <summary>Processes whose command line names <paramref name="path"/>: every Chromium process of a run carries its profile directory.</summary>
    private static List<string> ProcessesNaming(string path)
    {
        var found = new List<string>();
        foreach (var process in Directory.EnumerateDirectories("/proc"))
        {
            string commandLine;
            try
            {
                commandLine = File.ReadAllText(Path.Combine(process, "cmdline")).Replace('\0', ' ');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked, or is not ours to read.
                continue;
            }

            if (commandLine.Contains(path, StringComparison.Ordinal))
            {
                found.Add($"{Path.GetFileName(process)}: {commandLine}");
            }
        }

        return found;
    }
}
