namespace Tandem.Internal.Kernels;

/// <summary>State a kernel reads (a vector collection), held by one backend. Disposing it never waits on I/O.</summary>
internal interface IKernelState : IDisposable
{
    BackendKind Backend { get; }

    long SizeBytes { get; }
}

/// <summary>
/// An incremental (streaming) kernel call, such as a BLAKE3 stream. One
/// writer at a time. <see cref="IDisposable.Dispose"/> never waits on I/O (a remote
/// stream cancels its call), so the public stream can keep a synchronous Dispose.
/// </summary>
internal interface IKernelStream : IAsyncDisposable, IDisposable
{
    /// <summary>Takes <paramref name="data"/>; the caller may reuse it once the returned task completes.</summary>
    ValueTask AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Writes the result into <paramref name="output"/>; the stream takes no more data.</summary>
    ValueTask FinalizeAsync(Memory<byte> output, CancellationToken cancellationToken);
}

/// <summary>
/// A stream that runs in process: its calls complete on the caller's thread,
/// so it takes spans too, and its asynchronous forms complete synchronously
/// without allocating.
/// </summary>
internal interface ISynchronousKernelStream : IKernelStream
{
    void Append(ReadOnlySpan<byte> data);

    void Finalize(Span<byte> output);

    ValueTask IKernelStream.AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Append(data.Span);
            return ValueTask.CompletedTask;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }

    ValueTask IKernelStream.FinalizeAsync(Memory<byte> output, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Finalize(output.Span);
            return ValueTask.CompletedTask;
        }
        catch (Exception e)
        {
            return ValueTask.FromException(e);
        }
    }

    ValueTask IAsyncDisposable.DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Where kernels run: Managed (C#), Native (libtandem.so) or Remote (worker
/// processes). Every kernel goes through the same operations; the call's
/// descriptor says which. Calls are validated against the contract before
/// they get here.
/// </summary>
internal interface IKernelBackend
{
    BackendKind Kind { get; }

    /// <summary>Runs a call without blocking the caller's thread on long work or I/O.</summary>
    ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken);

    /// <summary>Builds a state of <paramref name="kind"/> from the call's inputs (copied before the returned task completes).</summary>
    ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken);

    ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken);
}

/// <summary>
/// A backend in this process (Managed, Native): nothing it does waits on I/O,
/// so it also serves synchronous calls, and its asynchronous state and stream
/// operations complete synchronously. Synchronous calls only ever reach one of these.
/// </summary>
internal interface IInProcessKernelBackend : IKernelBackend
{
    /// <summary>Runs a call to completion on this thread (short calls).</summary>
    void Invoke(KernelCall call);

    IKernelState CreateState(string kind, KernelCall tensors);

    ISynchronousKernelStream OpenStream(string kernel);

    ValueTask<IKernelState> IKernelBackend.CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<IKernelState>(cancellationToken);
        }

        try
        {
            return new ValueTask<IKernelState>(CreateState(kind, tensors));
        }
        catch (Exception e)
        {
            return ValueTask.FromException<IKernelState>(e);
        }
    }

    ValueTask<IKernelStream> IKernelBackend.OpenStreamAsync(string kernel, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<IKernelStream>(cancellationToken);
        }

        try
        {
            return new ValueTask<IKernelStream>(OpenStream(kernel));
        }
        catch (Exception e)
        {
            return ValueTask.FromException<IKernelStream>(e);
        }
    }
}
