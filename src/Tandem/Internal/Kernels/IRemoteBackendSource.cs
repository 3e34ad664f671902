namespace Tandem.Internal.Kernels;

/// <summary>
/// The out-of-process backend, registered by Tandem.Remote's
/// <c>AddTandemRemote</c>; the core only knows it as an <see cref="IKernelBackend"/>.
/// </summary>
internal interface IRemoteBackendSource
{
    IKernelBackend Backend { get; }
}

/// <summary>
/// A backend that learns its kernel descriptors after start (the remote
/// workers' Describe): kernels whose descriptor differs from this build's are
/// refused, so the dispatcher falls back before any call reaches them.
/// </summary>
internal interface IKernelRefusals
{
    /// <summary>Why <paramref name="kernel"/> is refused (FAILED_PRECONDITION), or null when served or not yet known.</summary>
    TandemException? Refusal(string kernel);
}

/// <summary>
/// A state that can be rebuilt on another backend from the tensors it keeps
/// (a remote collection), so a stateful call can fall back. Calls fall back
/// in process only, so the rebuild never waits on I/O.
/// </summary>
internal interface IFallbackState
{
    /// <summary>The same state on <paramref name="backend"/>, created on first use and owned by this state.</summary>
    IKernelState StateFor(IInProcessKernelBackend backend);
}
