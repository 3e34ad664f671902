using System.Text.Json;
using Microsoft.Extensions.Options;
using Tandem.Native;
using Tandem.Remote;
using Tandem.Server.Admin;
using Tandem.Server.Api;
using Tandem.Server.Demo;

namespace Tandem.Server.Dashboard;

/// <summary>
/// Every <see cref="DashboardOptions.Interval"/>, turns the closed metrics
/// window plus the live state (flags, workers, native library, load,
/// operations) into a <see cref="DashboardSnapshot"/>, serialises it once,
/// and wakes every SSE stream waiting for it.
/// </summary>
internal sealed class DashboardFeed(
    DashboardMetrics metrics,
    KernelFlags flags,
    IKernelRouting routing,
    INativeLibraryAdmin native,
    DemoLoadControl load,
    AdminOperations operations,
    IServiceProvider services,
    IOptions<ServerOptions> options,
    IOptionsMonitor<TandemOptions> tandem,
    TimeProvider time,
    ILogger<DashboardFeed> logger) : BackgroundService
{
    private readonly Queue<DashboardMetrics.Window> _recentWindows = new();
    private readonly object _gate = new();
    private (DashboardSnapshot Snapshot, byte[] Json)? _latest;
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The latest snapshot and its JSON, computing one if none was published yet.</summary>
    public (DashboardSnapshot Snapshot, byte[] Json) Latest
    {
        get
        {
            lock (_gate)
            {
                return _latest ??= Serialize(Build(metrics.Rotate(), options.Value.Dashboard.Interval.TotalSeconds));
            }
        }
    }

    /// <summary>Completes when the next snapshot is published.</summary>
    public Task Next
    {
        get
        {
            lock (_gate)
            {
                return _next.Task;
            }
        }
    }

    /// <summary>Closes the current window and publishes its snapshot (the timer does this each interval).</summary>
    public DashboardSnapshot Publish()
    {
        var snapshot = Build(metrics.Rotate(), options.Value.Dashboard.Interval.TotalSeconds);
        TaskCompletionSource next;
        lock (_gate)
        {
            _latest = Serialize(snapshot);
            next = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        next.TrySetResult();
        return snapshot;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Dashboard.Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    Publish();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // One bad snapshot must not stop the host; the next tick tries again.
                    logger.LogWarning(e, "Dashboard snapshot failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private DashboardSnapshot Build(DashboardMetrics.Window window, double seconds)
    {
        lock (_recentWindows)
        {
            _recentWindows.Enqueue(window);
            while (_recentWindows.Count > DashboardMetrics.BatchWindows)
            {
                _recentWindows.Dequeue();
            }
        }

        var throughput = window.Calls
            .GroupBy(c => (c.Key.Kernel, c.Key.Backend))
            .Select(g => new ThroughputPoint(g.Key.Kernel, g.Key.Backend, Rate(g.Sum(c => c.Value.Value), seconds)))
            .OrderBy(p => p.Kernel, StringComparer.Ordinal).ThenBy(p => p.Backend, StringComparer.Ordinal)
            .ToArray();
        var latency = window.CallLatency
            .Select(l => new LatencyPoint(l.Key, l.Value.Quantile(0.50), l.Value.Quantile(0.95), l.Value.Quantile(0.99), l.Value.Count))
            .OrderBy(p => p.Kernel, StringComparer.Ordinal)
            .ToArray();
        var queueCompute = window.Queue.Keys.Union(window.Compute.Keys)
            .Order(StringComparer.Ordinal)
            .Select(kernel => new QueueComputePoint(
                kernel,
                Quantile(window.Queue, kernel, 0.50),
                Quantile(window.Queue, kernel, 0.95),
                Quantile(window.Compute, kernel, 0.50),
                Quantile(window.Compute, kernel, 0.95)))
            .ToArray();
        var errors = metrics.ErrorTotals
            .Select(e => new ErrorPoint(e.Key.Backend, e.Key.Code, Rate(window.Errors.TryGetValue(e.Key, out var now) ? now.Value : 0, seconds), e.Value.Value))
            .OrderBy(e => e.Backend, StringComparer.Ordinal).ThenBy(e => e.Code, StringComparer.Ordinal)
            .ToArray();
        var fallbacks = metrics.FallbackTotals
            .Select(f => new FallbackPoint(f.Key.Kernel, f.Key.From, f.Key.To, f.Key.Reason, Rate(window.Fallbacks.TryGetValue(f.Key, out var now) ? now.Value : 0, seconds), f.Value.Value))
            .OrderBy(f => f.Kernel, StringComparer.Ordinal)
            .ToArray();
        var http = new HttpPoint(Rate(window.Http.Count, seconds), window.Http.Quantile(0.50), window.Http.Quantile(0.95), window.Http.Quantile(0.99));
        return new DashboardSnapshot(
            time.GetUtcNow(),
            seconds,
            ApiProblems.BackendName(tandem.CurrentValue.Backend),
            throughput,
            latency,
            http,
            queueCompute,
            BatchSizes(),
            errors,
            fallbacks,
            AdminApi.KernelViews(flags, routing),
            AdminApi.WorkerViews(services.GetService<IWorkerPoolAdmin>()),
            AdminApi.NativeView(native.Current),
            load.View,
            [.. operations.Recent.Take(5)]);
    }

    private BatchSizePoint[] BatchSizes()
    {
        var sums = new SortedDictionary<string, long[]>(StringComparer.Ordinal);
        lock (_recentWindows)
        {
            foreach (var window in _recentWindows)
            {
                foreach (var (kernel, counts) in window.BatchSizes)
                {
                    var sum = sums.TryGetValue(kernel, out var existing) ? existing : sums[kernel] = new long[counts.Length];
                    for (var i = 0; i < counts.Length; i++)
                    {
                        sum[i] += Interlocked.Read(ref counts[i]);
                    }
                }
            }
        }

        return [.. sums.Select(s => new BatchSizePoint(
            s.Key,
            [.. s.Value.Select((count, i) => new BatchBucket(i < DashboardMetrics.BatchBuckets.Length ? DashboardMetrics.BatchBuckets[i] : null, count))]))];
    }

    private static double Quantile(IReadOnlyDictionary<string, LatencyHistogram> histograms, string kernel, double q) =>
        histograms.TryGetValue(kernel, out var histogram) ? histogram.Quantile(q) : 0;

    private static double Rate(long count, double seconds) => Math.Round(count / Math.Max(seconds, 1e-3), 2);

    private static (DashboardSnapshot, byte[]) Serialize(DashboardSnapshot snapshot) =>
        (snapshot, JsonSerializer.SerializeToUtf8Bytes(snapshot, RequestBodies.Json));
}
