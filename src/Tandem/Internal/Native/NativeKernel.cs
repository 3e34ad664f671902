namespace Tandem.Internal.Native;

/// <summary>
/// A kernel of the loaded library whose descriptor matched this build's
/// contract. Callers pin every tensor until the call has completed.
/// </summary>
internal sealed unsafe class NativeKernel(string name, nint handle)
{
    public string Name { get; } = name;

    /// <summary>Runs the kernel on the calling thread and returns when it is done.</summary>
    public void Invoke(nint state, ReadOnlySpan<NativeTensor> inputs, ReadOnlySpan<NativeParam> parameters, ReadOnlySpan<NativeTensor> outputs, ref NativeCallContext context)
    {
        nint error;
        fixed (NativeTensor* i = inputs)
        fixed (NativeParam* p = parameters)
        fixed (NativeTensor* o = outputs)
        fixed (NativeCallContext* c = &context)
        {
            error = NativeMethods.tandem_kernel_invoke(handle, state, i, (nuint)inputs.Length, p, (nuint)parameters.Length, o, (nuint)outputs.Length, c);
        }

        NativeErrors.ThrowIfError(error, Name);
    }

    /// <summary>
    /// Queues the kernel on the native compute pool; the task completes when
    /// it has run. Tensor data must stay pinned until then; the argument
    /// spans are copied before this returns.
    /// </summary>
    public ValueTask Submit(nint state, ReadOnlySpan<NativeTensor> inputs, ReadOnlySpan<NativeParam> parameters, ReadOnlySpan<NativeTensor> outputs, ref NativeCallContext context)
    {
        var completion = NativeCompletion.Rent(Name);
        nint error;
        fixed (NativeTensor* i = inputs)
        fixed (NativeParam* p = parameters)
        fixed (NativeTensor* o = outputs)
        fixed (NativeCallContext* c = &context)
        {
            error = NativeMethods.tandem_kernel_submit(handle, state, i, (nuint)inputs.Length, p, (nuint)parameters.Length, o, (nuint)outputs.Length, c, NativeCompletion.Callback, completion.UserData);
        }

        if (NativeErrors.Take(error, Name) is { } refused)
        {
            completion.ReturnUnused();
            return ValueTask.FromException(refused);
        }

        return completion.Task;
    }
}
