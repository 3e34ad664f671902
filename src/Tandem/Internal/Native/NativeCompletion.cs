using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Tandem.Internal.Native;

/// <summary>
/// Completion of one tandem_kernel_submit call as a pooled
/// <see cref="IValueTaskSource"/>. Rust calls <see cref="OnComplete"/> on a
/// compute thread; with a <see cref="NativeCompletionQueue"/> that only posts
/// the completion to the queue's drainer, which delivers it (see there for
/// where continuations run); without one (the path before the queue, kept
/// for comparison) it completes on the Rust thread and continuations go to
/// the thread pool. Either way no continuation runs on Rust's threads. Each
/// instance keeps one GC handle for its lifetime, so a submission allocates
/// nothing on the managed heap.
/// </summary>
internal sealed unsafe class NativeCompletion : IValueTaskSource
{
    private const int MaxPooled = 256;
    private static readonly ConcurrentQueue<NativeCompletion> Pool = new();
    private static int _pooled;

    private readonly nint _self;
    private ManualResetValueTaskSourceCore<bool> _core;
    private string? _kernel;
    private NativeLibraryBinding? _library;
    private NativeCompletionQueue? _queue;
    private nint _error;

    // The callback and the awaiter each hold one reference; the instance goes
    // back to the pool only when both are done with it, so a reused instance
    // can never see the previous call's completion still running.
    private int _references;

    private NativeCompletion()
    {
        _core.RunContinuationsAsynchronously = true;
        _self = GCHandle.ToIntPtr(GCHandle.Alloc(this));
    }

    /// <summary>The callback to pass to tandem_kernel_submit.</summary>
    public static delegate* unmanaged<nint, nint, void> Callback => &OnComplete;

    /// <summary>The user data to pass with <see cref="Callback"/>.</summary>
    public nint UserData => _self;

    /// <summary>A completion for one submission; <paramref name="queue"/> null completes on the Rust thread.</summary>
    public static NativeCompletion Rent(NativeLibraryBinding library, string kernel, NativeCompletionQueue? queue)
    {
        if (Pool.TryDequeue(out var completion))
        {
            Interlocked.Decrement(ref _pooled);
        }
        else
        {
            completion = new NativeCompletion();
        }

        completion._kernel = kernel;
        completion._library = library;
        completion._queue = queue;
        completion._references = 2;
        return completion;
    }

    public ValueTask Task => new(this, _core.Version);

    /// <summary>Returns an instance whose submission was refused (no callback will come, nobody awaits).</summary>
    public void ReturnUnused()
    {
        Release();
        Release();
    }

    [UnmanagedCallersOnly]
    private static void OnComplete(nint userData, nint error)
    {
        var completion = (NativeCompletion)GCHandle.FromIntPtr(userData).Target!;
        completion._error = error;
        if (completion._queue is { } queue)
        {
            // Post only enqueues (and wakes) or delivers; neither throws into Rust.
            queue.Post(completion);
        }
        else
        {
            completion.Deliver(inline: false);
        }
    }

    /// <summary>
    /// Completes the awaiter with the call's outcome. <paramref name="inline"/>
    /// runs its continuation on this thread (only the drainer asks for that);
    /// otherwise the continuation goes to the thread pool.
    /// </summary>
    public void Deliver(bool inline)
    {
        var error = _error;
        _error = 0;
        TandemException? failure;
        try
        {
            failure = NativeErrors.Take(_library!, error, _kernel);
        }
        catch (Exception exception)
        {
            // This may run on a Rust thread, where nothing may unwind; the
            // caller must still be completed rather than left waiting.
            failure = new TandemException(TandemStatusCode.Internal, $"completing a native call failed: {exception.Message}", _kernel, BackendKind.Native);
        }

        _core.RunContinuationsAsynchronously = !inline;
        try
        {
            if (failure is not null)
            {
                _core.SetException(failure);
            }
            else
            {
                _core.SetResult(true);
            }
        }
        finally
        {
            Release();
        }
    }

    public void GetResult(short token)
    {
        try
        {
            _core.GetResult(token);
        }
        finally
        {
            Release();
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            Return();
        }
    }

    private void Return()
    {
        _core.Reset();
        _kernel = null;
        _library = null;
        _queue = null;
        if (Interlocked.Increment(ref _pooled) <= MaxPooled)
        {
            Pool.Enqueue(this);
        }
        else
        {
            Interlocked.Decrement(ref _pooled);
            GCHandle.FromIntPtr(_self).Free();
        }
    }
}
