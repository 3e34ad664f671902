using Tandem.Internal.Kernels;

namespace Tandem.Internal.Dispatch;

/// <summary>
/// A call waiting in, or running from, a kernel's queue. Its state changes
/// only by compare-and-swap, so it completes exactly once however the
/// caller's cancellation, its deadline and its batch race; its buffers are
/// only touched while it is <see cref="Copying"/>, which cancellation waits
/// out, so a caller that gave up can unpin them safely.
/// </summary>
internal sealed class PendingCall
{
    public const int Queued = 0;
    public const int Copying = 1;
    public const int Running = 2;
    public const int Done = 3;

    /// <summary>Runs alone on the caller's own buffers: cancellation is left to the kernel, which stops at its next check.</summary>
    public const int RunningAlone = 4;

    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CancellationTokenRegistration _registration;
    private int _state;

    public PendingCall(KernelCall call, int rows, long enqueuedAt, long? deadline, System.Diagnostics.ActivityContext span)
    {
        Call = call;
        Span = span;
        Rows = rows;
        EnqueuedAt = enqueuedAt;
        Deadline = deadline;
    }

    public KernelCall Call { get; }

    /// <summary>The caller's <c>tandem.call</c> span, linked from its batch's span.</summary>
    public System.Diagnostics.ActivityContext Span { get; }

    public int Rows { get; }

    /// <summary>The call's units of work by its descriptor's work bound (0 without one).</summary>
    public ulong Work => Call.WorkUnits;

    /// <summary>TimeProvider timestamp when the call was admitted.</summary>
    public long EnqueuedAt { get; }

    /// <summary>TimeProvider timestamp after which the call must not start, or null.</summary>
    public long? Deadline { get; }

    public Task Completion => _completion.Task;

    /// <summary>The caller's token, for a call that runs alone.</summary>
    public CancellationToken Token { get; private set; }

    public int State => Volatile.Read(ref _state);

    /// <summary>Completes the call with CANCELLED when its token fires before it is copied into a batch or while it runs.</summary>
    public void WatchCancellation(CancellationToken cancellationToken)
    {
        Token = cancellationToken;
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.UnsafeRegister(static (state, token) => ((PendingCall)state!).OnCancelled(token), this);
        }
    }

    public bool TryMove(int from, int to) => Interlocked.CompareExchange(ref _state, to, from) == from;

    public void Succeed()
    {
        Volatile.Write(ref _state, Done);
        _registration.Dispose();
        _completion.TrySetResult();
    }

    /// <summary>Fails the call unless it already completed.</summary>
    public void Fail(Exception exception)
    {
        Volatile.Write(ref _state, Done);
        _registration.Dispose();
        _completion.TrySetException(exception);
    }

    private void OnCancelled(CancellationToken token)
    {
        // A call being copied finishes its copy first (microseconds); the
        // batch's result is then simply not waited for.
        var spinner = default(SpinWait);
        while (true)
        {
            var state = State;
            if (state is Done or RunningAlone)
            {
                return;
            }

            if (state != Copying && TryMove(state, Done))
            {
                _completion.TrySetException(new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller", Call.Kernel));
                return;
            }

            spinner.SpinOnce();
        }
    }
}
