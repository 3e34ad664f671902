using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// Closed-loop load against the similarity facade (n = 200,000, dim = 384,
/// one query per call, k = 10): many concurrent callers, batching on and off,
/// and an overload run. Prints throughput and latency percentiles.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- load
/// </summary>
internal static class LoadGenerator
{
    internal const int Rows = 200_000;
    internal const int Dim = 384;

    public static async Task RunAsync()
    {
        var random = new Random(11);
        var vectors = GaussianData.Create(random, Rows * Dim);
        var queries = Enumerable.Range(0, 64).Select(_ => GaussianData.Create(random, Dim)).ToArray();
        Console.WriteLine($"load: similarity.topk, n = {Rows:N0}, dim = {Dim}, one query per call, k = 10, {Environment.ProcessorCount} cores");

        foreach (var batching in new[] { false, true })
        {
            await using var services = Services(batching, queueLimit: 100_000, timeout: null);
            var search = services.GetRequiredService<ISimilaritySearch>();
            await search.CreateCollectionAsync("load", vectors, Dim);
            await Closed(search, queries, callers: 16, callsPerCaller: 2);
            var (elapsed, latencies, _) = await Closed(search, queries, callers: 256, callsPerCaller: batching ? 8 : 1);
            Report($"256 callers, batching {(batching ? "on " : "off")}", elapsed, latencies);
        }

        await Overload(vectors, queries);
    }

    private static ServiceProvider Services(bool batching, int queueLimit, TimeSpan? timeout) => new ServiceCollection().AddTandem(o =>
    {
        o.Backend = BackendKind.Native;
        o.FallbackToManaged = false;
        o.Batching.Enabled = batching;
        o.Batching.MaxBatchRows = 64;
        o.Batching.MaxQueueDelay = TimeSpan.FromMilliseconds(1);
        o.Batching.QueueLimit = queueLimit;
        o.CallTimeout = timeout;
    }).BuildServiceProvider();

    internal static async Task<(TimeSpan Elapsed, double[] LatenciesMs, int Rejected)> Closed(ISimilaritySearch search, float[][] queries, int callers, int callsPerCaller)
    {
        var latencies = new double[callers * callsPerCaller];
        var rejected = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            for (var i = 0; i < callsPerCaller; i++)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await search.TopKAsync("load", queries[(c + i) % queries.Length], 10);
                }
                catch (TandemException e) when (e.Code == TandemStatusCode.ResourceExhausted)
                {
                    Interlocked.Increment(ref rejected);
                }

                latencies[(c * callsPerCaller) + i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        })));
        return (clock.Elapsed, latencies, rejected);
    }

    /// <summary>Ten times the calls the queue admits, each with a deadline: excess is refused at once, accepted calls finish in time.</summary>
    private static async Task Overload(float[] vectors, float[][] queries)
    {
        const int QueueLimit = 64;
        var deadline = TimeSpan.FromSeconds(2);
        await using var services = Services(batching: true, QueueLimit, deadline);
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("load", vectors, Dim);
        await Closed(search, queries, callers: 16, callsPerCaller: 2);
        GC.Collect();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        var offered = QueueLimit * 10;
        var rejections = new List<double>();
        var accepted = new List<double>();
        var lateOrFailed = 0;
        for (var round = 0; round < 5; round++)
        {
            var calls = new List<(long Start, Task Call)>();
            for (var i = 0; i < offered; i++)
            {
                var start = Stopwatch.GetTimestamp();
                var call = search.TopKAsync("load", queries[i % queries.Length], 10).AsTask();
                if (call.IsFaulted)
                {
                    // Refused at admission: the call has already returned.
                    rejections.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds * 1000);
                    continue;
                }

                calls.Add((start, call));
            }

            foreach (var (start, call) in calls)
            {
                try
                {
                    await call;
                    var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    accepted.Add(ms);
                    if (ms > deadline.TotalMilliseconds)
                    {
                        lateOrFailed++;
                    }
                }
                catch (TandemException)
                {
                    lateOrFailed++;
                }
            }
        }

        GC.Collect();
        var heapAfter = GC.GetTotalMemory(forceFullCollection: true);
        var r = rejections.ToArray();
        var a = accepted.ToArray();
        Array.Sort(r);
        Array.Sort(a);
        Console.WriteLine($"overload: {offered} calls offered at once x 5 rounds against a queue of {QueueLimit}, deadline {deadline.TotalSeconds} s");
        Console.WriteLine($"  accepted {a.Length}, late or failed {lateOrFailed}, accepted p50 {Percentile(a, 0.5):F1} ms p99 {Percentile(a, 0.99):F1} ms");
        Console.WriteLine($"  rejected {r.Length}, time for TopKAsync to return the refusal p50 {Percentile(r, 0.5):F1} us p99 {Percentile(r, 0.99):F1} us");
        Console.WriteLine($"  managed heap before {heapBefore / 1024.0 / 1024:F1} MiB, after {heapAfter / 1024.0 / 1024:F1} MiB");
    }

    internal static void Report(string name, TimeSpan elapsed, double[] latencies)
    {
        Array.Sort(latencies);
        Console.WriteLine($"{name}: {latencies.Length} calls in {elapsed.TotalMilliseconds:F0} ms = {latencies.Length / elapsed.TotalSeconds:F0} queries/s; latency p50 {Percentile(latencies, 0.5):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms");
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}
