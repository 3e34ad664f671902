using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tandem.Internal.Native;

/// <summary>
/// Carries completions of tandem_kernel_submit off Rust's compute threads:
/// the library's callback only enqueues the completion (and wakes the drainer
/// if it is parked), and one dedicated .NET thread delivers it, running the
/// awaiter's continuation inline. The drainer spins for a bounded time before
/// parking, so back-to-back calls cost no thread wake on the .NET side, and it
/// delivers every completion that queued up while it was awake without a
/// further wake (batching).
/// </summary>
/// <remarks>
/// <para>
/// A continuation that blocks cannot stall the others for long: a watchdog
/// (a timer, armed only while the drainer is awake) that finds the drainer in
/// the same continuation on two ticks hands everything queued to the thread
/// pool, and until that continuation returns, the callbacks deliver to the
/// thread pool themselves (the path before this queue existed). So a
/// completion waits behind a blocked continuation for at most about two
/// <see cref="StallPeriod"/>s, and a continuation that waits synchronously for
/// another native call still gets it.
/// </para>
/// <para>
/// Bounded: at most <see cref="Capacity"/> calls may be submitted and not yet
/// delivered; one more is refused with RESOURCE_EXHAUSTED before it reaches
/// the library.
/// </para>
/// </remarks>
internal sealed class NativeCompletionQueue : IDisposable
{
    /// <summary>Environment variable overriding <see cref="Capacity"/> of the shared queue.</summary>
    public const string CapacityVariable = "TANDEM_MAX_COMPLETIONS";

    /// <summary>Environment variable overriding the shared drainer's spin before it parks, in microseconds (0: park at once).</summary>
    public const string SpinVariable = "TANDEM_COMPLETION_SPIN_US";

    /// <summary>Default of <see cref="Capacity"/>: four times the Rust side's default pending bound.</summary>
    public const int DefaultCapacity = 4096;

    /// <summary>Default spin before parking: longer than a short call's round trip, short enough that an idle process stops burning CPU at once.</summary>
    public static readonly TimeSpan DefaultSpin = TimeSpan.FromMicroseconds(20);

    /// <summary>The thread name of the drainer (what /proc shows as its comm, truncated to 15 bytes).</summary>
    public const string ThreadName = "tandem-completions";

    /// <summary>How often the watchdog looks for a continuation that blocks the drainer (while the drainer is awake).</summary>
    public static readonly TimeSpan StallPeriod = TimeSpan.FromMilliseconds(1);

    // Drainer states. Only the drainer moves to Parked and Stopped; a producer
    // only moves Parked to Spinning (and then owes the wake).
    private const int Spinning = 0;
    private const int Parked = 1;
    private const int Stopped = 2;

    private static readonly Lazy<NativeCompletionQueue> SharedQueue = new(() => new NativeCompletionQueue(
        ReadVariable(CapacityVariable, DefaultCapacity),
        Environment.GetEnvironmentVariable(SpinVariable) is { } spin && int.TryParse(spin, out var us) && us >= 0 ? TimeSpan.FromMicroseconds(us) : DefaultSpin));

    private readonly ConcurrentQueue<NativeCompletion> _queue = new();
    // No spinning of its own: the drainer's spin is the only one, so "park at once" means it.
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private readonly long _spinTicks;
    private readonly Lock _starting = new();
    private readonly Lock _arming = new();
    private Thread? _drainer;
    private Timer? _watchdog;
    private bool _armed;
    private int _state;
    private int _outstanding;
    // Odd while the drainer runs a continuation; the watchdog compares it across ticks.
    private int _continuation;
    private int _lastSeenContinuation = -1;
    private int _stalled;
    private volatile bool _stopRequested;

    /// <param name="capacity">Calls that may be submitted and not yet delivered (at least 1).</param>
    /// <param name="spin">How long the drainer spins (yielding its core) for a completion before parking; zero parks at once.</param>
    public NativeCompletionQueue(int capacity, TimeSpan spin)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(spin, TimeSpan.Zero);
        Capacity = capacity;
        _spinTicks = (long)(spin.TotalSeconds * Stopwatch.Frequency);
    }

    /// <summary>
    /// The process's queue, shared by every loaded library (libraries are
    /// never unloaded, so neither is it): its drainer starts on the first
    /// submission and, once idle, stays parked at no CPU cost.
    /// </summary>
    public static NativeCompletionQueue Shared => SharedQueue.Value;

    /// <summary>Calls that may be submitted and not yet delivered.</summary>
    /// <value>The default is 4096 (<see cref="CapacityVariable"/> overrides it for the shared queue).</value>
    public int Capacity { get; }

    /// <summary>Calls submitted and not yet delivered.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>The drainer's managed thread id, or -1 before it started.</summary>
    internal int DrainerThreadId => _drainer?.ManagedThreadId ?? -1;

    /// <summary>Whether the drainer thread is running.</summary>
    internal bool IsDraining => _drainer is { IsAlive: true };

    /// <summary>
    /// Reserves room for one submission and starts the drainer if needed;
    /// RESOURCE_EXHAUSTED naming the bound when <see cref="Capacity"/> calls are outstanding.
    /// </summary>
    public TandemException? TryReserve(string kernel)
    {
        if (Interlocked.Increment(ref _outstanding) > Capacity)
        {
            Interlocked.Decrement(ref _outstanding);
            return new TandemException(TandemStatusCode.ResourceExhausted, $"the native completion queue is full ({Capacity} calls submitted and not yet completed); retry later, lower concurrency or raise {CapacityVariable}", kernel, BackendKind.Native);
        }

        if (_drainer is null)
        {
            Start();
        }

        return null;
    }

    /// <summary>Gives back a reservation whose submission the library refused.</summary>
    public void Unreserve() => Interlocked.Decrement(ref _outstanding);

    /// <summary>Called by the library's completion callback, on a Rust compute thread: enqueue, wake the drainer only if it is parked.</summary>
    public void Post(NativeCompletion completion)
    {
        if (Volatile.Read(ref _stalled) != 0 || Volatile.Read(ref _state) == Stopped)
        {
            // The drainer is stuck in a continuation (or gone): never wait behind it.
            Deliver(completion, inline: false);
            return;
        }

        _queue.Enqueue(completion);
        // Enqueue is a full fence, so these reads cannot pass it: either the
        // drainer (or the watchdog's rescue) sees the item, or this sees the
        // state they moved to first.
        var state = Volatile.Read(ref _state);
        if (state == Parked)
        {
            if (Interlocked.CompareExchange(ref _state, Spinning, Parked) == Parked)
            {
                _wake.Set();
            }
        }
        else if (state == Stopped || Volatile.Read(ref _stalled) != 0)
        {
            Rescue();
        }
    }

    /// <summary>Stops the drainer; completions still to come are delivered to the thread pool by the callback.</summary>
    public void Dispose()
    {
        _stopRequested = true;
        if (Interlocked.CompareExchange(ref _state, Spinning, Parked) == Parked)
        {
            _wake.Set();
        }

        Thread? drainer;
        lock (_starting)
        {
            drainer = _drainer;
            if (drainer is null)
            {
                // Never started: nothing will drain, so callbacks must deliver themselves.
                Interlocked.Exchange(ref _state, Stopped);
            }
        }

        Rescue();

        if (drainer is not null && drainer.ManagedThreadId != Environment.CurrentManagedThreadId)
        {
            drainer.Join();
        }

        lock (_arming)
        {
            _watchdog?.Dispose();
            _watchdog = null;
            _armed = false;
        }
    }

    private void Start()
    {
        lock (_starting)
        {
            if (_drainer is not null || _stopRequested)
            {
                return;
            }

            _watchdog = new Timer(static queue => ((NativeCompletionQueue)queue!).Watch(), this, Timeout.Infinite, Timeout.Infinite);
            var drainer = new Thread(Drain) { IsBackground = true, Name = ThreadName };
            drainer.UnsafeStart();
            _drainer = drainer;
        }
    }

    private void Drain()
    {
        Arm();
        while (!_stopRequested)
        {
            if (_queue.TryDequeue(out var completion))
            {
                Volatile.Write(ref _continuation, _continuation + 1);
                Deliver(completion, inline: true);
                // A full fence before reading the flag: either this sees the
                // watchdog's mark, or the watchdog sees that we left.
                Interlocked.Increment(ref _continuation);
                if (Volatile.Read(ref _stalled) != 0)
                {
                    // The continuation that blocked us returned: take over again.
                    Volatile.Write(ref _stalled, 0);
                }

                continue;
            }

            if (!SpinForWork())
            {
                Park();
            }
        }

        Interlocked.Exchange(ref _state, Stopped);
        Rescue();
    }

    /// <summary>
    /// A watchdog tick (on the thread pool): the drainer in the same
    /// continuation as on the last tick is blocked; hand what waits to the
    /// thread pool. A parked drainer needs no watching, so the timer stops.
    /// </summary>
    private void Watch()
    {
        var seen = Volatile.Read(ref _continuation);
        if ((seen & 1) == 1 && seen == _lastSeenContinuation)
        {
            Interlocked.Exchange(ref _stalled, 1);
            if (Volatile.Read(ref _continuation) == seen)
            {
                Rescue();
            }
            else
            {
                // It returned meanwhile and may have missed the mark: lift it, or
                // callbacks would bypass a drainer that is no longer blocked.
                Interlocked.CompareExchange(ref _stalled, 0, 1);
            }
        }

        _lastSeenContinuation = seen;
        lock (_arming)
        {
            if (Volatile.Read(ref _state) != Spinning && _armed)
            {
                _armed = false;
                _watchdog?.Change(Timeout.Infinite, Timeout.Infinite);
            }
        }
    }

    /// <summary>Starts the watchdog unless it is running (the drainer is awake again).</summary>
    private void Arm()
    {
        lock (_arming)
        {
            if (!_armed && _watchdog is not null)
            {
                _armed = true;
                _watchdog.Change(StallPeriod, StallPeriod);
            }
        }
    }

    /// <summary>Spins (yielding the core to any runnable thread) until a completion is queued or the spin budget is spent.</summary>
    private bool SpinForWork()
    {
        if (_spinTicks == 0)
        {
            return false;
        }

        var until = Stopwatch.GetTimestamp() + _spinTicks;
        var spinner = default(SpinWait);
        while (_queue.IsEmpty)
        {
            if (_stopRequested || Stopwatch.GetTimestamp() >= until)
            {
                return !_queue.IsEmpty;
            }

            // Never Sleep(1): a millisecond would dwarf what the spin saves.
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        return true;
    }

    private void Park()
    {
        _wake.Reset();
        Interlocked.Exchange(ref _state, Parked);
        if ((!_queue.IsEmpty || _stopRequested) && Interlocked.CompareExchange(ref _state, Spinning, Parked) == Parked)
        {
            return;
        }

        // Either no work, or a producer already moved the state and owes (or paid) the wake.
        _wake.Wait();
        // Under the lock every time: a tick may be disarming the timer right now.
        Arm();
    }

    /// <summary>Delivers whatever is queued to the thread pool (the drainer is stuck in a continuation or gone).</summary>
    private void Rescue()
    {
        while (_queue.TryDequeue(out var completion))
        {
            Deliver(completion, inline: false);
        }
    }

    private void Deliver(NativeCompletion completion, bool inline)
    {
        Interlocked.Decrement(ref _outstanding);
        completion.Deliver(inline);
    }

    private static int ReadVariable(string name, int fallback) =>
        Environment.GetEnvironmentVariable(name) is { } value && int.TryParse(value, out var n) && n > 0 ? n : fallback;
}
