using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>
/// A kernel in C#: reads the call's inputs and writes its outputs in place.
/// Runs synchronously; <see cref="ManagedKernelBackend"/> decides the thread.
/// Throws <see cref="TandemException"/> (CANCELLED) when cancelled.
/// </summary>
internal interface IManagedKernel
{
    string Name { get; }

    void Run(KernelCall call, CancellationToken cancellationToken);
}
