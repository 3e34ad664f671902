using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Tandem.Internal.Native;

/// <summary>
/// Completion of one tandem_kernel_submit call as a pooled
/// <see cref="IValueTaskSource"/>: Rust calls <see cref="OnComplete"/> on a
/// compute thread, and continuations run on the thread pool, never on Rust's
/// threads. Each instance keeps one GC handle for its lifetime, so a
/// submission allocates nothing on the managed heap.
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

    public static NativeCompletion Rent(NativeLibraryBinding library, string kernel)
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
        // Exceptions must not unwind into Rust; there are none to expect here,
        // but a failure must still complete the caller rather than vanish.
        var completion = (NativeCompletion)GCHandle.FromIntPtr(userData).Target!;
        try
        {
            if (NativeErrors.Take(completion._library!, error, completion._kernel) is { } exception)
            {
                completion._core.SetException(exception);
            }
            else
            {
                completion._core.SetResult(true);
            }
        }
        catch (Exception exception)
        {
            try
            {
                completion._core.SetException(new TandemException(TandemStatusCode.Internal, $"completing a native call failed: {exception.Message}", completion._kernel, BackendKind.Native));
            }
            catch (InvalidOperationException)
            {
                // Already completed: nothing more to report.
            }
        }
        finally
        {
            completion.Release();
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
