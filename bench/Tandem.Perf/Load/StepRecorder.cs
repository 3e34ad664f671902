namespace Tandem.Perf.Load;

/// <summary>What the requests of a step's window did: latencies of the successful ones, counts of the failed ones by code. Thread-safe.</summary>
internal sealed class StepRecorder
{
    private readonly object _gate = new();
    private readonly LatencyHistogram _latency = new();
    private readonly Dictionary<string, long> _errors = new(StringComparer.Ordinal);
    private long _live;
    private long _liveErrors;

    /// <summary>Requests recorded so far (for live progress).</summary>
    public long LiveCount => Interlocked.Read(ref _live);

    public long LiveErrors => Interlocked.Read(ref _liveErrors);

    public void Record(long nanoseconds, string? error)
    {
        Interlocked.Increment(ref _live);
        lock (_gate)
        {
            if (error is null)
            {
                _latency.Record(nanoseconds);
            }
            else
            {
                _liveErrors++;
                _errors[error] = _errors.GetValueOrDefault(error) + 1;
            }
        }
    }

    /// <summary>A copy of the latencies and the errors.</summary>
    public (LatencyHistogram Latency, Dictionary<string, long> Errors) Snapshot()
    {
        lock (_gate)
        {
            var copy = new LatencyHistogram();
            copy.Add(_latency);
            return (copy, new Dictionary<string, long>(_errors, StringComparer.Ordinal));
        }
    }
}
