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

    private readonly Meter _meter;

    public TandemTelemetry(IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(Name) ?? new Meter(Name);
        Calls = _meter.CreateCounter<long>(TandemTelemetryNames.Calls, description: "Kernel calls completed, by kernel, backend and status code.");
        Fallbacks = _meter.CreateCounter<long>(TandemTelemetryNames.Fallbacks, description: "Calls that moved to another backend, by kernel, from, to and reason.");
        CallDuration = _meter.CreateHistogram<double>(TandemTelemetryNames.CallDuration, "s", "From admission to completion.");
        QueueDuration = _meter.CreateHistogram<double>(TandemTelemetryNames.QueueDuration, "s", "From admission to the start of the call's batch.");
        ComputeDuration = _meter.CreateHistogram<double>(TandemTelemetryNames.ComputeDuration, "s", "Time the backend spent on a batch.");
        BatchSize = _meter.CreateHistogram<long>(TandemTelemetryNames.BatchSize, "{row}", "Rows per executed batch.");
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
