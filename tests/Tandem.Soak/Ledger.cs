using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tandem.Soak;

/// <summary>
/// Exact accounting: one slot per call id, moved from not started to in
/// flight to ended exactly once, with its outcome (a status code, or one of
/// the soak's own verdicts) and latency. A second end, an end without a
/// start, or a call still in flight at the end is a soak failure.
/// </summary>
internal sealed class Ledger
{
    /// <summary>The call succeeded but its result differs from Managed's.</summary>
    public const byte WrongResult = 100;

    /// <summary>The call failed with something other than a <see cref="TandemException"/>.</summary>
    public const byte UnexpectedException = 101;

    /// <summary>The call never ended.</summary>
    public const byte NeverEnded = 102;

    private const byte NotStarted = 0;
    private const byte InFlightState = 1;
    private const byte Ended = 2;
    private const int MaxKeptFailures = 50;

    private readonly byte[] _state;
    private readonly byte[] _outcome;
    private readonly byte[] _kind;
    private readonly byte[] _target;
    private readonly long[] _started;
    private readonly int[] _latencyMicros;
    private readonly ConcurrentDictionary<long, bool> _inFlight = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private long _failureCount;

    public Ledger(long capacity)
    {
        if (capacity > Array.MaxLength)
        {
            throw new SoakUsageException($"--calls may be at most {Array.MaxLength}");
        }

        _state = new byte[capacity];
        _outcome = new byte[capacity];
        _kind = new byte[capacity];
        _target = new byte[capacity];
        _started = new long[capacity];
        _latencyMicros = new int[capacity];
    }

    public long Capacity => _state.LongLength;

    public long FailureCount => Interlocked.Read(ref _failureCount);

    public IReadOnlyCollection<string> Failures => _failures;

    public void Begin(long id, CallKind kind, int target)
    {
        _kind[id] = (byte)kind;
        _target[id] = (byte)target;
        _started[id] = Stopwatch.GetTimestamp();
        if (Interlocked.CompareExchange(ref _state[id], InFlightState, NotStarted) != NotStarted)
        {
            Fail($"call {id} started twice");
        }

        _inFlight[id] = true;
    }

    /// <summary>Ends call <paramref name="id"/>; <paramref name="failure"/> non-null makes it a soak failure with those details.</summary>
    public void End(long id, byte outcome, string? failure)
    {
        var latency = Stopwatch.GetElapsedTime(_started[id]);
        _latencyMicros[id] = (int)Math.Min(int.MaxValue, latency.Ticks / 10);
        _outcome[id] = outcome;
        var previous = Interlocked.CompareExchange(ref _state[id], Ended, InFlightState);
        if (previous != InFlightState)
        {
            Fail(previous == Ended ? $"call {id} ended twice" : $"call {id} ended without starting");
        }

        _inFlight.TryRemove(id, out _);
        if (failure is not null)
        {
            Fail($"call {id} ({Describe(id)}): {failure}");
        }
    }

    public void Fail(string message)
    {
        if (Interlocked.Increment(ref _failureCount) <= MaxKeptFailures)
        {
            _failures.Enqueue(message);
        }
    }

    /// <summary>Calls in flight longer than <paramref name="limit"/>.</summary>
    public IEnumerable<(long Id, TimeSpan Age)> Overdue(TimeSpan limit)
    {
        foreach (var id in _inFlight.Keys)
        {
            var age = Stopwatch.GetElapsedTime(_started[id]);
            if (age > limit)
            {
                yield return (id, age);
            }
        }
    }

    public string Describe(long id) => $"{(CallKind)_kind[id]} on {Program.TargetNames[_target[id]]}";

    /// <summary>
    /// Closes the books after the last call: every call started among the
    /// first <paramref name="taken"/> ids must have ended exactly once.
    /// Returns how many started.
    /// </summary>
    public long Close(long taken)
    {
        long started = 0;
        for (long id = 0; id < taken; id++)
        {
            if (_state[id] == NotStarted)
            {
                continue;
            }

            started++;
            if (_state[id] != Ended)
            {
                _outcome[id] = NeverEnded;
                Fail($"call {id} ({Describe(id)}) never ended (in flight for {Stopwatch.GetElapsedTime(_started[id]).TotalSeconds:F1} s)");
            }
        }

        return started;
    }

    public bool WasStarted(long id) => _state[id] != NotStarted;

    public byte Outcome(long id) => _outcome[id];

    public CallKind Kind(long id) => (CallKind)_kind[id];

    public int TargetOf(long id) => _target[id];

    public long StartedAt(long id) => _started[id];

    public int LatencyMicros(long id) => _latencyMicros[id];
}
