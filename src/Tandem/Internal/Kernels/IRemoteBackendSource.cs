using Tandem.Contracts.V1;

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

/// <summary>
/// A backend whose holders (remote workers) read the state repository
/// themselves: a stored state is created there by its (name, version) alone,
/// so the client keeps no copy of its tensors — a worker that joins or
/// restarts loads it from the repository too.
/// </summary>
internal interface IStoredStateBackend
{
    /// <summary>Whether every worker now serving has a state repository (Describe's <c>state_repository</c>); starts the workers first if need be.</summary>
    ValueTask<bool> CanLoadStoredAsync(string kernel, CancellationToken cancellationToken);

    /// <summary>
    /// Creates stored state (<paramref name="name"/>, <paramref name="version"/> ≥ 1,
    /// <paramref name="sizeBytes"/> in its file) on the workers;
    /// <paramref name="rebuild"/> builds the same state in process for a call
    /// that falls back (from the repository, so it never waits on the network).
    /// </summary>
    ValueTask<IKernelState> LoadStoredAsync(string kind, KernelDescriptor creator, string name, long version, long sizeBytes, Func<IInProcessKernelBackend, IKernelState> rebuild, CancellationToken cancellationToken);
}
