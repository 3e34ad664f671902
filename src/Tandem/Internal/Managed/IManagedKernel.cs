using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>
/// A kernel in C#: reads the call's inputs and writes its outputs in place.
/// Runs synchronously; <see cref="ManagedKernelBackend"/> decides the thread.
/// Throws <see cref="TandemException"/> (CANCELLED) when cancelled. Twins are
/// registered in the service collection (the reference kernels' by AddTandem,
/// the user's by AddManagedKernel) and checked against the host's contracts.
/// </summary>
internal interface IManagedKernel
{
    string Name { get; }

    /// <summary>The descriptor hash the twin was written against.</summary>
    string DescriptorHash { get; }

    void Run(KernelCall call, CancellationToken cancellationToken);

    /// <summary>A new stream of the kernel's streaming form, or null when the twin has none.</summary>
    ISynchronousKernelStream? OpenStream() => null;
}

/// <summary>A state kind in C#: builds the managed state kernels of that kind read.</summary>
internal interface IManagedStateKind
{
    string Kind { get; }

    /// <summary>Builds the state from the call's inputs (the kind's tensors in order; absent ones have dtype 0), copying what it keeps.</summary>
    IKernelState Create(KernelCall tensors);
}
