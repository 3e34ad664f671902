using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>The C# backend: every kernel's managed twin, by name.</summary>
internal sealed class ManagedKernelBackend(Func<TandemOptions> options) : IInProcessKernelBackend
{
    private readonly Dictionary<string, IManagedKernel> _kernels = new IManagedKernel[]
    {
        new ManagedTopK(),
        new ManagedMonteCarlo(),
        new ManagedBlake3Kernel(),
    }.ToDictionary(k => k.Name, StringComparer.Ordinal);

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

    public IKernelState CreateState(string kind, KernelCall tensors) => kind switch
    {
        KernelContracts.CollectionKind => new ManagedCollection(
            tensors.InputSpan<float>(0),
            (int)tensors.InputDim(0, 0),
            (int)tensors.InputDim(0, 1),
            tensors.HasInput(1) ? tensors.InputSpan<long>(1) : default),
        _ => throw new TandemException(TandemStatusCode.NotFound, $"unknown state kind '{kind}'", backend: BackendKind.Managed),
    };

    public ISynchronousKernelStream OpenStream(string kernel) => kernel == KernelContracts.HashBlake3
        ? new ManagedBlake3()
        : throw new TandemException(TandemStatusCode.Unimplemented, $"kernel '{kernel}' has no streaming form", kernel, BackendKind.Managed);

    private IManagedKernel Kernel(string name) => _kernels.TryGetValue(name, out var kernel)
        ? kernel
        : throw new TandemException(TandemStatusCode.Unimplemented, $"the managed backend has no kernel '{name}'", name, BackendKind.Managed);
}

/// <summary><c>hash.blake3</c> one-shot in C#.</summary>
internal sealed class ManagedBlake3Kernel : IManagedKernel
{
    public string Name => KernelContracts.HashBlake3;

    public void Run(KernelCall call, CancellationToken cancellationToken) => ManagedBlake3.Hash(call.InputSpan<byte>(0), call.OutputSpan<byte>(0));
}
