using Tandem.Server.Api;

namespace Tandem.Server.Dashboard;

// What the dashboard receives every interval (GET /dashboard/snapshot and the
// SSE stream /dashboard/events). Rates are per second over the last
// interval; latencies are milliseconds; docs/operations.md explains each.

internal sealed record DashboardSnapshot(
    DateTimeOffset Time,
    double IntervalSeconds,
    string Mode,
    ThroughputPoint[] Throughput,
    LatencyPoint[] Latency,
    HttpPoint Http,
    QueueComputePoint[] QueueCompute,
    BatchSizePoint[] BatchSizes,
    ErrorPoint[] Errors,
    FallbackPoint[] Fallbacks,
    KernelFlagsResponse[] Kernels,
    WorkerResponse[] Workers,
    NativeResponse Native,
    LoadResponse Load,
    OperationResponse[] Operations);

/// <summary>Completed kernel calls per second.</summary>
internal sealed record ThroughputPoint(string Kernel, string Backend, double PerSecond);

/// <summary>Kernel call latency from admission to completion.</summary>
internal sealed record LatencyPoint(string Kernel, double P50, double P95, double P99, long Count);

/// <summary>API requests (collections, search, pricing, hashing) as the HTTP server measures them.</summary>
internal sealed record HttpPoint(double PerSecond, double P50, double P95, double P99);

/// <summary>Time queued before a batch started vs time the backend computed.</summary>
internal sealed record QueueComputePoint(string Kernel, double QueueP50, double QueueP95, double ComputeP50, double ComputeP95);

/// <summary>Rows per executed batch over the last 10 intervals; Le null is +Inf.</summary>
internal sealed record BatchSizePoint(string Kernel, BatchBucket[] Buckets);

internal sealed record BatchBucket(long? Le, long Count);

/// <summary>Failures by backend ("request" when refused before reaching one) and code.</summary>
internal sealed record ErrorPoint(string Backend, string Code, double PerSecond, long Total);

internal sealed record FallbackPoint(string Kernel, string From, string To, string Reason, double PerSecond, long Total);
