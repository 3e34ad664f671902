using System.Diagnostics.Metrics;
using Tandem.Perf.Load;

namespace Tandem.Perf.Telemetry;

/// <summary>
/// The <c>Tandem</c> meter in process, through a <see cref="MeterListener"/>:
/// call, queue and compute durations and exact batch sizes of one kernel,
/// recorded only between <see cref="BeginAsync"/> and <see cref="EndAsync"/>.
/// Memory is bounded: three fixed histograms and at most
/// <see cref="MaxBatchSizes"/> batch sizes kept exactly (larger ones are
/// counted in power-of-two buckets).
/// </summary>
internal sealed class MeterCapture : IServerTelemetry, IDisposable
{
    /// <summary>Largest batch size kept exactly.</summary>
    public const int MaxBatchSizes = 4096;

    private readonly string _kernel;
    private readonly MeterListener _listener = new();
    private readonly object _gate = new();
    private LatencyHistogram _call = new();
    private LatencyHistogram _queue = new();
    private LatencyHistogram _compute = new();
    private Dictionary<long, long> _batches = [];
    private long _batchRows;
    private volatile bool _measuring;

    public MeterCapture(string kernel)
    {
        _kernel = kernel;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == TandemTelemetryNames.Source && instrument.Name is TandemTelemetryNames.CallDuration
                or TandemTelemetryNames.QueueDuration or TandemTelemetryNames.ComputeDuration or TandemTelemetryNames.BatchSize)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>(OnDuration);
        _listener.SetMeasurementEventCallback<long>(OnRows);
        _listener.Start();
    }

    public string Source => "meter";

    public Task BeginAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            (_call, _queue, _compute, _batches, _batchRows) = (new(), new(), new(), [], 0);
        }

        _measuring = true;
        return Task.CompletedTask;
    }

    public Task<ServerStats?> EndAsync(CancellationToken cancellationToken)
    {
        _measuring = false;
        lock (_gate)
        {
            var batches = _batches.Values.Sum();
            var buckets = _batches.OrderBy(b => b.Key).Select(b => b.Key > 0 && b.Key <= MaxBatchSizes
                ? new BatchBucket(b.Key, b.Key, b.Value)
                : new BatchBucket((-b.Key / 2) + 1, -b.Key, b.Value)).ToArray();
            return Task.FromResult<ServerStats?>(new ServerStats(Source, Stats(_call), Stats(_queue), Stats(_compute), batches, batches == 0 ? null : (double)_batchRows / batches, buckets));
        }
    }

    public void Dispose() => _listener.Dispose();

    internal static DurationStats? Stats(LatencyHistogram histogram) => histogram.Count == 0
        ? null
        : new DurationStats(histogram.Count, histogram.Mean / 1e6, histogram.Percentile(50) / 1e6, histogram.Percentile(90) / 1e6, histogram.Percentile(99) / 1e6);

    private bool Mine(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "kernel")
            {
                return tag.Value as string == _kernel;
            }
        }

        return false;
    }

    private void OnDuration(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (!_measuring || !Mine(tags))
        {
            return;
        }

        var nanoseconds = (long)(seconds * 1e9);
        lock (_gate)
        {
            (instrument.Name switch
            {
                TandemTelemetryNames.CallDuration => _call,
                TandemTelemetryNames.QueueDuration => _queue,
                _ => _compute,
            }).Record(nanoseconds);
        }
    }

    private void OnRows(Instrument instrument, long rows, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        if (!_measuring || !Mine(tags))
        {
            return;
        }

        lock (_gate)
        {
            // Sizes up to MaxBatchSizes exactly; larger ones in power-of-two
            // buckets, keyed negative (-upper bound).
            var key = rows is > 0 and <= MaxBatchSizes ? rows : -(long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, rows));
            _batches[key] = _batches.GetValueOrDefault(key) + 1;
            _batchRows += rows;
        }
    }
}
