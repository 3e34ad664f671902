using System.Diagnostics;

namespace Tandem.Internal.Native;

/// <summary>
/// A kernel of one loaded library whose descriptor matched this build's
/// contract. Callers pin every tensor until the call has completed.
/// </summary>
internal sealed class NativeKernel(NativeLibraryBinding library, string name, nint handle)
{
    public string Name { get; } = name;

    /// <summary>The library's tandem_kernel_t*, valid for the life of the process (libraries are never unloaded).</summary>
    public nint Handle => handle;

    /// <summary>The library the kernel belongs to.</summary>
    public NativeLibraryBinding Library => library;

    /// <summary>This kernel's prepared calls (ABI 1.2), for calls whose shapes repeat.</summary>
    public NativePreparedCalls Prepared { get; } = new(library, name, handle);

    /// <summary>Runs the kernel on the calling thread and returns when it is done.</summary>
    public unsafe void Invoke(nint state, ReadOnlySpan<NativeTensor> inputs, ReadOnlySpan<NativeParam> parameters, ReadOnlySpan<NativeTensor> outputs, ref NativeCallContext context)
    {
        nint error;
        fixed (NativeTensor* i = inputs)
        fixed (NativeParam* p = parameters)
        fixed (NativeTensor* o = outputs)
        fixed (NativeCallContext* c = &context)
        {
            error = library.tandem_kernel_invoke(handle, state, i, (nuint)inputs.Length, p, (nuint)parameters.Length, o, (nuint)outputs.Length, c);
        }

        NativeErrors.ThrowIfError(library, error, Name);
    }

    /// <summary>
    /// Queues the kernel on the native compute pool; the task completes when
    /// it has run, delivered through <see cref="NativeCompletionQueue.Shared"/>.
    /// Tensor data must stay pinned until then; the argument spans are copied
    /// before this returns.
    /// </summary>
    public ValueTask Submit(nint state, ReadOnlySpan<NativeTensor> inputs, ReadOnlySpan<NativeParam> parameters, ReadOnlySpan<NativeTensor> outputs, ref NativeCallContext context) =>
        Submit(state, inputs, parameters, outputs, ref context, NativeCompletionQueue.Shared);

    /// <summary>
    /// <see cref="Submit(nint, ReadOnlySpan{NativeTensor}, ReadOnlySpan{NativeParam}, ReadOnlySpan{NativeTensor}, ref NativeCallContext)"/>
    /// through <paramref name="queue"/>; null completes on the Rust thread with
    /// continuations on the thread pool (the path before the queue, kept for
    /// benchmarks and tests to compare).
    /// </summary>
    internal unsafe ValueTask Submit(nint state, ReadOnlySpan<NativeTensor> inputs, ReadOnlySpan<NativeParam> parameters, ReadOnlySpan<NativeTensor> outputs, ref NativeCallContext context, NativeCompletionQueue? queue)
    {
        if (queue?.TryReserve(Name) is { } full)
        {
            return ValueTask.FromException(full);
        }

        var completion = NativeCompletion.Rent(library, Name, queue);
        nint error;
        fixed (NativeTensor* i = inputs)
        fixed (NativeParam* p = parameters)
        fixed (NativeTensor* o = outputs)
        fixed (NativeCallContext* c = &context)
        {
            error = library.tandem_kernel_submit(handle, state, i, (nuint)inputs.Length, p, (nuint)parameters.Length, o, (nuint)outputs.Length, c, NativeCompletion.Callback, completion.UserData);
        }

        if (NativeErrors.Take(library, error, Name) is { } refused)
        {
            queue?.Unreserve();
            completion.ReturnUnused();
            return ValueTask.FromException(refused);
        }

        return completion.Task;
    }

    /// <summary>
    /// Runs the call synchronously on this thread, or submits it to the
    /// native pool and awaits it with the caller's cancellation wired to a
    /// native cancel token. Never completes while Rust may still write into
    /// the caller's pinned buffers.
    /// </summary>
    public async ValueTask RunAsync(nint state, NativeCallArgs args, bool synchronous, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        if (synchronous)
        {
            var context = CallContext(timeout, 0);
            InvokePrepared(state, ref args, ref context);
            return;
        }

        NativeCancelHandle? cancel = null;
        CancellationTokenRegistration registration = default;
        try
        {
            if (cancellationToken.CanBeCanceled)
            {
                cancel = new NativeCancelHandle(library);
                registration = cancellationToken.UnsafeRegister(static c => ((NativeCancelHandle)c!).Cancel(), cancel);
            }

            var context = CallContext(timeout, cancel?.DangerousGetHandle() ?? 0);
            await Submit(state, ref args, ref context).ConfigureAwait(false);
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
            cancel?.Dispose();
        }
    }

    /// <summary>A timeout in whole nanoseconds, at least 1; 0 (none) when null; saturated, so a huge timeout never wraps into a tiny one.</summary>
    internal static ulong Nanoseconds(TimeSpan? timeout) => timeout switch
    {
        null => 0,
        { Ticks: <= 0 } => 1,
        { Ticks: >= long.MaxValue / 100 } => ulong.MaxValue,
        { } t => (ulong)t.Ticks * 100,
    };

    /// <summary>Deadline, cancellation token and the caller's trace id for one call.</summary>
    internal static NativeCallContext CallContext(TimeSpan? timeout, nint cancel)
    {
        var context = new NativeCallContext
        {
            TimeoutNs = Nanoseconds(timeout),
            Cancel = cancel,
        };
        if (Activity.Current is { } activity)
        {
            activity.TraceId.CopyTo(context.TraceId);
            activity.SpanId.CopyTo(context.SpanId);
        }

        return context;
    }

    /// <summary>Runs a call described by <paramref name="args"/> on this thread.</summary>
    public void Invoke(nint state, ref NativeCallArgs args, ref NativeCallContext context) =>
        Invoke(state, ((Span<NativeTensor>)args.Inputs)[..args.InputCount], ((Span<NativeParam>)args.Params)[..args.ParamCount], ((Span<NativeTensor>)args.Outputs)[..args.OutputCount], ref context);

    /// <summary>
    /// Runs a call on this thread through its prepared call when its shapes
    /// repeat (<see cref="NativePreparedCalls"/>), else unprepared.
    /// </summary>
    public void InvokePrepared(nint state, ref NativeCallArgs args, ref NativeCallContext context)
    {
        if (!Prepared.TryInvoke(state, ref args, ref context))
        {
            Invoke(state, ref args, ref context);
        }
    }

    private ValueTask Submit(nint state, ref NativeCallArgs args, ref NativeCallContext context) =>
        Submit(state, ((Span<NativeTensor>)args.Inputs)[..args.InputCount], ((Span<NativeParam>)args.Params)[..args.ParamCount], ((Span<NativeTensor>)args.Outputs)[..args.OutputCount], ref context);
}
