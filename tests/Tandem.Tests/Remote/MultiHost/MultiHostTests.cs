using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Remote;
using Tandem.Remote.Internal.Pool;
using Tandem.Tests.Shared;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote.MultiHost;

/// <summary>
/// Workers on other "hosts" — network namespaces on their own addresses,
/// reached over veth links from the test's namespace, on TCP with the shared
/// token — under load: a link taken down mid-load loses no call (idempotent
/// calls finish on the other hosts) and the host is ejected; brought up, it
/// rejoins and serves; a host added to the DNS answer is discovered and
/// used; a client without the token, or with a wrong one, is refused.
/// Bounded (a few hundred calls) and self-cleaning (namespaces and processes
/// go with the test).
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MultiHostTests
{
    private const int Dim = 16;
    internal const int Port = 50051;
    internal const string Token = "multi-host-test-token-0123456789abcdef";
    private static readonly float[] Vectors = TestData.Integers(3000, Dim, seed: 21);

    [Fact]
    public async Task ALinkGoesDownUnderLoad_NoCallIsLost_AndTheHostRejoinsWhenItComesBack()
    {
        await using var hosts = new NetworkHosts();
        using var token = new TokenFile();
        for (var i = 1; i <= 3; i++)
        {
            await hosts.AddAsync(i);
            await StartWorkerAsync(hosts, i, token.Path);
        }

        await using var host = Client(o =>
        {
            for (var i = 1; i <= 3; i++)
            {
                o.Endpoints.Add($"http://{hosts.Address(i)}:{Port}");
            }
        });
        Assert.Equal(3, (await host.StartAsync()).Count);
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var queries = Enumerable.Range(0, 240).Select(i => TestData.Integers(1, Dim, seed: 1000 + i)).ToArray();
        var expected = await Task.WhenAll(queries.Select(q => host.Search.TopKAsync("c", q, 5).AsTask()));

        var victim = host.Client.Pool.Workers.Single(w => w.Address.Contains(hosts.Address(1), StringComparison.Ordinal));
        // Load from 16 callers, until 3 s after the link went down (bounded:
        // at most 4,000 calls); every answer is checked.
        using var stop = new CancellationTokenSource();
        var load = new SearchLoad(host, "c", queries, expected, k: 5, callers: 16, maxCalls: 4000, stop.Token);
        await host.Eventually(() => victim.InFlight > 0, "host 1 has calls in flight");
        await hosts.SetLinkAsync(1, up: false);
        await Task.Delay(TimeSpan.FromSeconds(3));
        await stop.CancelAsync();
        Assert.Empty(await load.Failures);
        Assert.True(victim.Info.Failed > 0, $"no call was caught by the partition ({victim.Info})");
        await host.Eventually(() => host.Admin.Workers.Single(w => w.Name == victim.Name).Status is WorkerStatus.Ejected or WorkerStatus.NotServing, $"host 1 leaves routing ({victim.Info})");

        await hosts.SetLinkAsync(1, up: true);
        await host.Eventually(() => host.Admin.Workers.Single(w => w.Name == victim.Name).Status == WorkerStatus.Serving, "host 1 rejoins", TimeSpan.FromSeconds(60));
        var before = victim.Info.Completed;
        var watch = Stopwatch.StartNew();
        while (victim.Info.Completed == before && watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.WhenAll(queries.Take(12).Select(q => host.Search.TopKAsync("c", q, 5).AsTask()));
        }

        Assert.True(victim.Info.Completed > before, "the rejoined host serves calls again");
    }

    [Fact]
    public async Task AHostAddedToTheDnsAnswer_IsDiscoveredGivenTheStateAndUsed()
    {
        await using var hosts = new NetworkHosts();
        using var token = new TokenFile();
        for (var i = 1; i <= 3; i++)
        {
            await hosts.AddAsync(i);
            await StartWorkerAsync(hosts, i, token.Path);
        }

        var answers = new InjectedDnsAnswers("workers.test", IPAddress.Parse(hosts.Address(1)), IPAddress.Parse(hosts.Address(2)));
        await using var host = Client(o => o.Endpoints.Add($"dns:///workers.test:{Port}"), answers);
        await host.StartAsync();
        await host.Eventually(() => host.Admin.Workers.Count(w => w.Status == WorkerStatus.Serving) == 2, "two hosts serve");
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);

        answers.Set(IPAddress.Parse(hosts.Address(1)), IPAddress.Parse(hosts.Address(2)), IPAddress.Parse(hosts.Address(3)));
        await host.Eventually(() => host.Admin.Workers.Count(w => w.Status == WorkerStatus.Serving) == 3, "the third host is discovered");
        var third = host.Client.Pool.Workers.Single(w => w.Address.Contains(hosts.Address(3), StringComparison.Ordinal));
        Assert.Single(third.States);
        var watch = Stopwatch.StartNew();
        while (third.Info.Completed == 0 && watch.Elapsed < TimeSpan.FromSeconds(30))
        {
            var query = TestData.Integers(1, Dim, seed: 7);
            await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => host.Search.TopKAsync("c", query, 3).AsTask()));
        }

        Assert.True(third.Info.Completed > 0, "calls reach the discovered host");
    }

    [Theory]
    [InlineData("not-the-token-of-these-workers-0000")]
    [InlineData(null)]
    public async Task AClientWithoutTheToken_IsRefusedByAWorkerOnAnotherHost(string? wrong)
    {
        await using var hosts = new NetworkHosts();
        using var token = new TokenFile();
        await hosts.AddAsync(1);
        await StartWorkerAsync(hosts, 1, token.Path);

        await using var host = Client(o =>
        {
            o.Endpoints.Add($"http://{hosts.Address(1)}:{Port}");
            o.WorkerToken = wrong;
        });
        await host.StartAsync();

        var error = await Assert.ThrowsAsync<TandemException>(() => host.Search.CreateCollectionAsync("c", Vectors, Dim).AsTask());
        Assert.True(error.Code is TandemStatusCode.Unauthenticated or TandemStatusCode.Unavailable, $"{error.Code}: {error.Message}");
        Assert.DoesNotContain(Token, error.Message);
        Assert.DoesNotContain(host.Admin.Workers, w => w.Status == WorkerStatus.Serving);
    }

    internal static RemoteTestHost Client(Action<RemoteOptions> endpoints, IWorkerAddressResolver? resolver = null) => new(
        o =>
        {
            o.WorkerToken = Token;
            o.StartTimeout = TimeSpan.FromSeconds(5);
            o.CallDeadline = TimeSpan.FromSeconds(1);
            o.EjectionConsecutiveFailures = 2;
            o.EjectionProbeInterval = TimeSpan.FromMilliseconds(200);
            o.DnsRefreshInterval = TimeSpan.FromMilliseconds(200);
            o.DrainGrace = TimeSpan.FromSeconds(1);
            endpoints(o);
        },
        tandem: t => t.Batching.Enabled = false,
        services: s =>
        {
            if (resolver is not null)
            {
                s.AddSingleton(resolver);
            }
        });

    /// <summary>
    /// Top-k calls from <paramref name="callers"/> callers until stopped (at
    /// most <paramref name="maxCalls"/>), every answer checked against
    /// <paramref name="expected"/>; <see cref="Failures"/> completes with what went wrong.
    /// </summary>
    internal sealed class SearchLoad
    {
        private int _issued;

        public SearchLoad(RemoteTestHost host, string collection, float[][] queries, Tandem.Similarity.TopKResult[] expected, int k, int callers, int maxCalls, CancellationToken stop)
        {
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var tasks = Enumerable.Range(0, callers).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested && Interlocked.Increment(ref _issued) <= maxCalls)
                {
                    var i = Random.Shared.Next(queries.Length);
                    try
                    {
                        var result = await host.Search.TopKAsync(collection, queries[i], k);
                        if (!result.Ids.SequenceEqual(expected[i].Ids))
                        {
                            failures.Enqueue($"query {i}: wrong answer");
                        }
                    }
                    catch (TandemException e)
                    {
                        failures.Enqueue($"query {i}: {e.Code} {e.Message}");
                    }
                }
            })).ToArray();
            Failures = Task.WhenAll(tasks).ContinueWith(_ => (IReadOnlyCollection<string>)[.. failures], TaskScheduler.Default);
        }

        /// <summary>Calls issued so far.</summary>
        public int Issued => Volatile.Read(ref _issued);

        public Task<IReadOnlyCollection<string>> Failures { get; }
    }

    /// <summary>Starts a worker on host <paramref name="index"/> (its address, <see cref="Port"/>) and waits until it listens.</summary>
    internal static async Task StartWorkerAsync(NetworkHosts hosts, int index, string tokenFile, params string[] extra)
    {
        var worker = hosts.Start(index, WorkerBinary.Path, ["--listen", $"{hosts.Address(index)}:{Port}", "--token-file", tokenFile, "--log-level", "error", "--grace", "1", .. extra]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var line = await worker.StandardOutput.ReadLineAsync(timeout.Token);
        Assert.Contains("listening", line ?? "(the worker exited)");
    }

    /// <summary>The shared token in a file only its owner reads, as the worker requires.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    internal sealed class TokenFile : IDisposable
    {
        public TokenFile()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tandem-token-{Guid.NewGuid():N}");
            File.WriteAllText(Path, Token);
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }
}
