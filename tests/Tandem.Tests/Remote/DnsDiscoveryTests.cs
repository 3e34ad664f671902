using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Remote;
using Tandem.Remote.Internal.Pool;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// <c>dns:///name:port</c> endpoints against real tandem-worker processes on
/// loopback TCP: every address a name resolves to becomes a worker; workers
/// appear and leave as the answer changes, with no restart and the state
/// replayed into each newcomer; a name that resolves to nothing leaves no
/// worker (UNAVAILABLE) until it resolves again. The system resolver is used
/// for <c>localhost</c>; changing answers are injected (a fake for fault
/// injection, as a Kubernetes headless Service would change them).
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
public sealed class DnsDiscoveryTests
{
    private const int Dim = 8;
    private static readonly float[] Vectors = TestData.Integers(300, Dim, seed: 3);
    private static readonly float[] Query = TestData.Integers(1, Dim, seed: 4);

    [Fact]
    public async Task Localhost_ResolvedByTheSystem_IsAWorker()
    {
        var port = FreePort();
        await using var worker = await TcpWorker.StartAsync("127.0.0.1", port);
        await using var host = Host($"dns:///localhost:{port}");

        await host.StartAsync();
        await host.Eventually(() => host.Admin.Workers.Any(w => w.Name == "localhost/127.0.0.1" && w.Status == WorkerStatus.Serving), "localhost's worker serves");
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        Assert.Equal(BackendKind.Remote, (await host.Search.TopKAsync("c", Query, 3)).Backend);
    }

    [Fact]
    public async Task ChangingAnswers_WorkersJoinAndLeave_AndCallsKeepWorking()
    {
        var port = FreePort();
        await using var a = await TcpWorker.StartAsync("127.0.0.1", port);
        await using var b = await TcpWorker.StartAsync("127.0.0.2", port);
        var answers = new InjectedDnsAnswers("workers.test", IPAddress.Parse("127.0.0.1"));
        await using var host = Host($"dns:///workers.test:{port}", answers);

        await host.StartAsync();
        await host.Eventually(() => Serving(host) == "workers.test/127.0.0.1", "the first worker serves");
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var expected = await host.Search.TopKAsync("c", Query, 3);

        // A second address: discovered, given the collection, used.
        answers.Set(IPAddress.Parse("127.0.0.1"), IPAddress.Parse("127.0.0.2"));
        await host.Eventually(() => Serving(host) == "workers.test/127.0.0.1,workers.test/127.0.0.2", "the second worker joins");
        Assert.All(host.Client.Pool.Workers, w => Assert.Single(w.States));

        // The first address goes: it leaves routing; calls go to the other.
        answers.Set(IPAddress.Parse("127.0.0.2"));
        await host.Eventually(() => Serving(host) == "workers.test/127.0.0.2" && host.Admin.Workers.Count == 1, "the first worker leaves");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(expected.Ids, (await host.Search.TopKAsync("c", Query, 3)).Ids);
        }

        // Nothing at all: no worker, calls are UNAVAILABLE; then one comes back.
        answers.Set();
        await host.Eventually(() => host.Admin.Workers.Count == 0, "every worker leaves");
        var error = await Assert.ThrowsAsync<TandemException>(() => host.Search.TopKAsync("c", Query, 3).AsTask());
        Assert.Equal(TandemStatusCode.Unavailable, error.Code);
        answers.Set(IPAddress.Parse("127.0.0.1"));
        await host.Eventually(() => Serving(host) == "workers.test/127.0.0.1", "the first worker rejoins");
        Assert.Equal(expected.Ids, (await host.Search.TopKAsync("c", Query, 3)).Ids);
    }

    [Fact]
    public async Task ANameThatDoesNotResolve_StartsWithNoWorker_AndCallsFailUnavailable()
    {
        await using var host = Host("dns:///tandem-no-such-host.invalid:50051");
        var watch = Stopwatch.StartNew();
        await host.StartAsync();

        Assert.Empty(host.Admin.Workers);
        var error = await Assert.ThrowsAsync<TandemException>(() => host.Search.CreateCollectionAsync("c", Vectors, Dim).AsTask());
        Assert.Equal(TandemStatusCode.Unavailable, error.Code);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(25), $"took {watch.Elapsed}");
    }

    [Theory]
    [InlineData("dns:///no-port")]
    [InlineData("dns:///name:0")]
    [InlineData("dns:///name:70000")]
    [InlineData("dns:///bad name:80")]
    [InlineData("dns://authority/name:80")]
    public void AMalformedDnsEndpoint_IsRefusedAtStartNamingTheForm(string endpoint)
    {
        using var services = new ServiceCollection().AddTandemRemote(o => o.Endpoints.Add(endpoint)).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RemoteOptions>>().Value);

        Assert.Contains("dns:///name:port", error.Message);
    }

    private static string Serving(RemoteTestHost host) =>
        string.Join(',', host.Admin.Workers.Where(w => w.Status == WorkerStatus.Serving).Select(w => w.Name).Order(StringComparer.Ordinal));

    private static RemoteTestHost Host(string endpoint, IWorkerAddressResolver? resolver = null) => new(
        o =>
        {
            o.Endpoints.Add(endpoint);
            o.Transport = RemoteTransport.Tcp;
            o.StartTimeout = TimeSpan.FromSeconds(2);
            o.DnsRefreshInterval = TimeSpan.FromMilliseconds(100);
            o.EjectionProbeInterval = TimeSpan.FromMilliseconds(100);
            o.DrainGrace = TimeSpan.FromSeconds(1);
        },
        services: s =>
        {
            if (resolver is not null)
            {
                s.AddSingleton(resolver);
            }
        });

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A tandem-worker on <c>address:port</c> (loopback, no token), killed when disposed.</summary>
    private sealed class TcpWorker(Process process) : IAsyncDisposable
    {
        public static async Task<TcpWorker> StartAsync(string address, int port)
        {
            var info = new ProcessStartInfo(WorkerBinary.Path)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[] { "--listen", $"{address}:{port}", "--insecure-no-auth", "--log-level", "error", "--grace", "1" })
            {
                info.ArgumentList.Add(arg);
            }

            info.Environment.Remove("TANDEM_WORKER_TOKEN");
            var process = Process.Start(info)!;
            process.ErrorDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            Assert.Contains("listening", line ?? "(the worker exited)");
            return new TcpWorker(process);
        }

        public async ValueTask DisposeAsync()
        {
            if (!process.HasExited)
            {
                process.Kill();
                await process.WaitForExitAsync();
            }

            process.Dispose();
        }
    }
}
