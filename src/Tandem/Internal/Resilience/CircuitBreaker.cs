using Tandem.Internal.Kernels;

namespace Tandem.Internal.Resilience;

/// <summary>
/// One backend's circuit breaker, with Polly's circuit-breaker semantics
/// (a failure ratio over a sliding sampling window, a minimum throughput,
/// a break, then one probe) and a fast path a synchronous call can afford:
/// admitting a call while the circuit is closed is one read of the state
/// word, and a success is one atomic add to the current window's counter.
/// Failures, the window's roll-over and every state change take a lock; they
/// are rare by definition. A success that races a window's roll-over or a
/// state change may be counted in a neighbouring window or not at all: the
/// ratio is a statistic, and the lock keeps every state change exact. Used by the synchronous path directly and by the
/// asynchronous Polly pipeline through <see cref="BreakerStrategy"/>.
/// </summary>
internal sealed class CircuitBreaker
{
    /// <summary>Windows the sampling duration is split into (as Polly's rolling health metrics).</summary>
    internal const int Windows = 10;

    private const int Closed = 0;
    private const int Open = 1;
    private const int HalfOpen = 2;

    private readonly Lock _lock = new();
    private readonly Window[] _windows = new Window[Windows];
    private readonly long _windowTicks;
    private readonly long _breakTicks;
    private readonly double _failureRatio;
    private readonly int _minimumThroughput;
    private int _state;
    private long _openUntil;

    // The window the last outcome fell in: a success within it is counted
    // after two comparisons, without dividing the timestamp.
    private volatile Window? _recent;

    public CircuitBreaker(ResilienceOptions settings, long timestampFrequency)
    {
        _failureRatio = settings.BreakerFailureRatio;
        _minimumThroughput = settings.BreakerMinimumThroughput;
        _windowTicks = Math.Max(1, (long)(settings.BreakerSamplingDuration.TotalSeconds * timestampFrequency / Windows));
        _breakTicks = (long)(settings.BreakerBreakDuration.TotalSeconds * timestampFrequency);
        for (var i = 0; i < Windows; i++)
        {
            _windows[i] = new Window { Epoch = long.MinValue };
        }
    }

    /// <summary>Whether the circuit lets calls through without a probe (for tests and gauges).</summary>
    public bool IsClosed => Volatile.Read(ref _state) == Closed;

    /// <summary>
    /// Admits a call at <paramref name="now"/> (a <see cref="TimeProvider"/>
    /// timestamp), or refuses it while the circuit is open or a probe runs.
    /// The call that ends a break is the probe: its outcome alone closes or
    /// reopens the circuit.
    /// </summary>
    public bool TryEnter(long now, out bool probe)
    {
        probe = false;
        return Volatile.Read(ref _state) == Closed || TryEnterSlow(now, out probe);
    }

    /// <summary>Records how an admitted call ended: <paramref name="failed"/> when its code counts against the backend.</summary>
    public void Complete(long now, bool probe, bool failed)
    {
        if (probe)
        {
            lock (_lock)
            {
                if (failed)
                {
                    Break(now);
                }
                else
                {
                    Reset();
                    Volatile.Write(ref _state, Closed);
                }
            }

            return;
        }

        if (!failed)
        {
            var window = Current(now);
            Interlocked.Increment(ref window.Successes);
            return;
        }

        lock (_lock)
        {
            Interlocked.Increment(ref CurrentLocked(now).Failures);
            if (Volatile.Read(ref _state) != Closed)
            {
                return;
            }

            long failures = 0;
            long total = 0;
            var epoch = now / _windowTicks;
            foreach (var window in _windows)
            {
                if (Volatile.Read(ref window.Epoch) > epoch - Windows)
                {
                    var f = Volatile.Read(ref window.Failures);
                    failures += f;
                    total += f + Volatile.Read(ref window.Successes);
                }
            }

            if (total >= _minimumThroughput && failures >= _failureRatio * total)
            {
                Break(now);
            }
        }
    }

    /// <summary>Whether an outcome counts against the backend (the same rule for every path).</summary>
    public static bool Counts(Exception? exception) =>
        exception is TandemException e && TandemStatusCodes.CountsAgainstBackend(e.Code);

    private bool TryEnterSlow(long now, out bool probe)
    {
        probe = false;
        lock (_lock)
        {
            switch (_state)
            {
                case Closed:
                    return true;
                case Open when now >= _openUntil:
                    _state = HalfOpen;
                    probe = true;
                    return true;
                default:
                    return false;
            }
        }
    }

    private void Break(long now)
    {
        _openUntil = _breakTicks >= long.MaxValue - now ? long.MaxValue : now + _breakTicks;
        Reset();
        Volatile.Write(ref _state, Open);
    }

    private void Reset()
    {
        _recent = null;
        foreach (var window in _windows)
        {
            window.Start = long.MaxValue;
            window.End = long.MinValue;
            Volatile.Write(ref window.Epoch, long.MinValue);
        }
    }

    /// <summary>The window <paramref name="now"/> falls in, cleared first if it last held an older period.</summary>
    private Window Current(long now)
    {
        if (_recent is { } recent && now >= recent.Start && now < recent.End)
        {
            return recent;
        }

        var epoch = now / _windowTicks;
        var window = _windows[(int)(epoch % Windows)];
        if (Volatile.Read(ref window.Epoch) != epoch)
        {
            lock (_lock)
            {
                window = CurrentLocked(now);
            }
        }

        _recent = window;
        return window;
    }

    /// <summary><see cref="Current"/> with the lock held.</summary>
    private Window CurrentLocked(long now)
    {
        var epoch = now / _windowTicks;
        var window = _windows[(int)(epoch % Windows)];
        if (window.Epoch != epoch)
        {
            // A window's time span moves with its epoch; readers that still see
            // the old span in _recent check Start/End first, then Epoch.
            window.Successes = 0;
            window.Failures = 0;
            window.Start = long.MaxValue;
            window.End = long.MinValue;
            Volatile.Write(ref window.Epoch, epoch);
            window.Start = epoch * _windowTicks;
            Volatile.Write(ref window.End, (epoch + 1) * _windowTicks);
        }

        return window;
    }

    private sealed class Window
    {
        public long Epoch;
        public long Start = long.MaxValue;
        public long End = long.MinValue;
        public int Successes;
        public int Failures;
    }
}
