using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>The C# backend: the registered twins of the catalog, by kernel and state kind.</summary>
internal sealed class ManagedKernelBackend(Func<TandemOptions> options, KernelCatalog catalog) : IInProcessKernelBackend
{
    public BackendKind Kind => BackendKind.Managed;

    public void Invoke(KernelCall call) => Kernel(call.Kernel).Run(call, CancellationToken.None);

    public ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
    {
        var kernel = Kernel(call.Kernel);
        if (call.Work < options().SyncWorkThreshold)
        {
            kernel.Run(call, cancellationToken);
            return ValueTask.CompletedTask;
        }

        return new ValueTask(Task.Run(() => kernel.Run(call, cancellationToken), CancellationToken.None));
    }

    public IKernelState CreateState(string kind, KernelCall tensors) => catalog.StateTwin(kind) is { } twin
        ? twin.Create(tensors)
        : throw new TandemException(TandemStatusCode.NotFound, $"the managed backend has no state kind '{kind}'; register a managed twin of it with AddManagedStateKind", backend: BackendKind.Managed);

    public ISynchronousKernelStream OpenStream(string kernel) => Kernel(kernel).OpenStream()
        ?? throw new TandemException(TandemStatusCode.Unimplemented, $"kernel '{kernel}' has no streaming form in the managed backend", kernel, BackendKind.Managed);

    private IManagedKernel Kernel(string name) => catalog.Twin(name)
        ?? throw new TandemException(TandemStatusCode.Unimplemented, $"the managed backend has no kernel '{name}'; register a managed twin of it with AddManagedKernel", name, BackendKind.Managed);
}

/// <summary><c>hash.blake3</c> in C#: one-shot and streaming.</summary>
internal sealed class ManagedBlake3Kernel : IManagedKernel
{
    public string Name => KernelContracts.HashBlake3;

    public string DescriptorHash => ReferenceKernels.HashBlake3.Hash;

    public void Run(KernelCall call, CancellationToken cancellationToken) => ManagedBlake3.Hash(call.InputSpan<byte>(0), call.OutputSpan<byte>(0));

    public ISynchronousKernelStream OpenStream() => new ManagedBlake3();
}

/// <summary><c>diagnostics.noop</c> in C#: nothing to do, so every backend can serve it.</summary>
internal sealed class ManagedNoopKernel : IManagedKernel
{
    public string Name => KernelContracts.DiagnosticsNoop;

    public string DescriptorHash => ReferenceKernels.DiagnosticsNoop.Hash;

    public void Run(KernelCall call, CancellationToken cancellationToken)
    {
    }
}

/// <summary><c>vector_collection</c> in C#: the collection <see cref="ManagedTopK"/> scans.</summary>
internal sealed class ManagedCollectionKind : IManagedStateKind
{
    public string Kind => KernelContracts.CollectionKind;

    public IKernelState Create(KernelCall tensors) => new ManagedCollection(
        tensors.InputSpan<float>(0),
        (int)tensors.InputDim(0, 0),
        (int)tensors.InputDim(0, 1),
        tensors.HasInput(1) ? tensors.InputSpan<long>(1) : default);
}
