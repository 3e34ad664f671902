using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Tandem.Internal.Telemetry;

/// <summary>
/// Tandem's metrics and spans (names in DESIGN.md §7): Meter and
/// ActivitySource "Tandem". One instance per service provider, created from
/// its <see cref="IMeterFactory"/> when there is one.
/// </summary>
internal sealed class TandemTelemetry : IDisposable
{
    public const string Name = TandemTelemetryNames.Source;

    public static readonly ActivitySource Source = new(Name);

    /// <summary>
    /// Bucket bounds (seconds) advised for the duration histograms: 50 µs to
    /// 10 s in steps of 1.5–2×. Without advice exporters use their defaults,
    /// OpenTelemetry's 0–10,000 (meant for milliseconds), which put every call
    /// in the first bucket.
    /// </summary>
    private static readonly InstrumentAdvice<double> DurationAdvice = new()
    {
        HistogramBucketBoundaries =
        [
            0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075,
            0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
            0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
            0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
            1, 2.5, 5, 10,
        ],
    };

    /// <summary>Powers of two for rows per batch.</summary>
    private static readonly InstrumentAdvice<long> RowsAdvice = new()
    {
        HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    };

    private readonly Meter _meter;

    public TandemTelemetry(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        Calls = _meter.CreateCounter<long>(TandemTelemetryNames.Calls, description: "Kernel calls completed, by kernel, backend and status code.");
        Fallbacks = _meter.CreateCounter<long>(TandemTelemetryNames.Fallbacks, description: "Calls that moved to another backend, by kernel, from, to and reason.");
        Rejections = _meter.CreateCounter<long>(TandemTelemetryNames.Rejections, description: "Calls refused before they were queued, by kernel and reason (the limit they exceeded).");
        CallDuration = _meter.CreateHistogram<double>(TandemTelemetryNames.CallDuration, "s", "From admission to completion.", tags: null, DurationAdvice);
        QueueDuration = _meter.CreateHistogram<double>(TandemTelemetryNames.QueueDuration, "s", "From admission to the start of the call's batch.", tags: null, DurationAdvice);
        ComputeDuration = _meter.CreateHistogram<double>(TandemTelemetryNames.ComputeDuration, "s", "Time the backend spent on a batch.", tags: null, DurationAdvice);
        BatchSize = _meter.CreateHistogram<long>(TandemTelemetryNames.BatchSize, "{row}", "Rows per executed batch.", tags: null, RowsAdvice);
    }

    public Counter<long> Calls { get; }

    public Counter<long> Fallbacks { get; }

    public Counter<long> Rejections { get; }

    public Histogram<double> CallDuration { get; }

    public Histogram<double> QueueDuration { get; }

    public Histogram<double> ComputeDuration { get; }

    public Histogram<long> BatchSize { get; }

    /// <summary>Registers the queue-depth and in-flight gauges over the dispatcher's live counts.</summary>
    public void ObserveDepth(Func<IEnumerable<Measurement<int>>> queueDepth, Func<IEnumerable<Measurement<int>>> inFlight)
    {
        _meter.CreateObservableGauge(TandemTelemetryNames.QueueDepth, queueDepth, "{call}", "Calls admitted and not yet completed, by kernel and backend.");
        _meter.CreateObservableGauge(TandemTelemetryNames.InFlight, inFlight, "{batch}", "Batches or calls running on a backend, by kernel and backend.");
    }

    /// <summary>The gRPC name of a code (INVALID_ARGUMENT, ...), as the Rust side logs it.</summary>
    public static string CodeName(TandemStatusCode code) => TandemTelemetryNames.Code(code);

    public static string BackendName(BackendKind backend) => TandemTelemetryNames.Backend(backend);

    public void Dispose() => _meter.Dispose();
}
