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

    // Bucket advice for exporters (OpenTelemetry's defaults are sized for
    // milliseconds): 10 µs to 10 s, and powers of two for batch rows.
    private static readonly InstrumentAdvice<double> Seconds = new()
    {
        HistogramBucketBoundaries = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    };

    private static readonly InstrumentAdvice<long> Rows = new()
    {
        HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    };

    private readonly Meter _meter;

    public TandemTelemetry(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        Calls = _meter.CreateCounter<long>(TandemTelemetryNames.Calls, description: "Kernel calls completed, by kernel, backend and status code.");
        Fallbacks = _meter.CreateCounter<long>(TandemTelemetryNames.Fallbacks, description: "Calls that moved to another backend, by kernel, from, to and reason.");
        CallDuration = _meter.CreateHistogram(TandemTelemetryNames.CallDuration, "s", "From admission to completion.", advice: Seconds);
        QueueDuration = _meter.CreateHistogram(TandemTelemetryNames.QueueDuration, "s", "From admission to the start of the call's batch.", advice: Seconds);
        ComputeDuration = _meter.CreateHistogram(TandemTelemetryNames.ComputeDuration, "s", "Time the backend spent on a batch.", advice: Seconds);
        BatchSize = _meter.CreateHistogram(TandemTelemetryNames.BatchSize, "{row}", "Rows per executed batch.", advice: Rows);
    }

    public Counter<long> Calls { get; }

    public Counter<long> Fallbacks { get; }

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
