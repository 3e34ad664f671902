namespace Tandem.Internal.Kernels;

/// <summary>State a kernel reads (a vector collection), held by one backend.</summary>
internal interface IKernelState : IDisposable
{
    BackendKind Backend { get; }

    long SizeBytes { get; }
}

/// <summary>An incremental (streaming) kernel call, such as a BLAKE3 stream.</summary>
internal interface IKernelStream : IDisposable
{
    void Append(ReadOnlySpan<byte> data);

    /// <summary>Writes the result into <paramref name="output"/>; the stream takes no more data.</summary>
    void Finalize(Span<byte> output);
}

/// <summary>
/// Where kernels run: Managed (C#) or Native (libtandem.so). Every kernel goes
/// through the same three operations; the call's descriptor says which.
/// Calls are validated against the contract before they get here.
/// </summary>
internal interface IKernelBackend
{
    BackendKind Kind { get; }

    /// <summary>Runs a call to completion on this thread (short calls).</summary>
    void Invoke(KernelCall call);

    /// <summary>Runs a call without blocking the caller's thread on long work.</summary>
    ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken);

    /// <summary>Builds a state of <paramref name="kind"/> from the call's inputs (copied).</summary>
    IKernelState CreateState(string kind, KernelCall tensors);

    IKernelStream OpenStream(string kernel);
}
