namespace Tandem.Perf.Telemetry;

/// <summary>Reads the server side of a step: opened when the measured window starts, closed when it ends.</summary>
internal interface IServerTelemetry
{
    /// <summary>"meter" (a MeterListener in process) or "prometheus" (two /metrics scrapes).</summary>
    string Source { get; }

    Task BeginAsync(CancellationToken cancellationToken);

    /// <summary>The split over the window; null when the source could not be read (the report says so).</summary>
    Task<ServerStats?> EndAsync(CancellationToken cancellationToken);
}

/// <summary>Percentiles of one duration instrument over a window, in milliseconds.</summary>
internal sealed record DurationStats(long Count, double MeanMs, double P50Ms, double P90Ms, double P99Ms);

/// <summary>Batches of <see cref="Low"/> to <see cref="High"/> rows (equal when exact).</summary>
internal sealed record BatchBucket(long Low, long High, long Count);

/// <summary>
/// The server-side split of a step, from the <c>Tandem</c> meter: call time
/// (admission to completion), queue time (admission to the start of the
/// call's batch) and compute time (per batch), and how many rows each
/// executed batch held.
/// </summary>
internal sealed record ServerStats(
    string Source,
    DurationStats? Call,
    DurationStats? Queue,
    DurationStats? Compute,
    long Batches,
    double? MeanBatchRows,
    IReadOnlyList<BatchBucket> BatchSizes);
