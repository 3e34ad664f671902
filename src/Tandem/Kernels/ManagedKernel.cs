using Tandem.Internal.Kernels;
using Tandem.Internal.Managed;

namespace Tandem.Kernels;

/// <summary>
/// A C# implementation (managed twin) of a kernel: the fallback when the
/// native library or the workers cannot serve it, and the reference for
/// conformance tests. Register it with <c>AddManagedKernel&lt;T&gt;()</c>;
/// the host refuses it at startup unless it knows the kernel (from its own
/// kernels or a contract set declared with <c>AddKernelContracts</c>) with
/// the descriptor hash the twin names.
/// </summary>
/// <remarks>
/// Calls reach <see cref="Run"/> validated against the contract, from any
/// thread and concurrently; long calls run on the thread pool.
/// </remarks>
public abstract class ManagedKernel : IManagedKernel
{
    /// <param name="kernel">The kernel's name, for example a generated <c>Name</c> constant.</param>
    /// <param name="descriptorHash">The descriptor hash the twin implements, for example a generated <c>Hash</c> constant.</param>
    protected ManagedKernel(string kernel, string descriptorHash)
    {
        ArgumentException.ThrowIfNullOrEmpty(kernel);
        ArgumentException.ThrowIfNullOrEmpty(descriptorHash);
        Kernel = kernel;
        DescriptorHash = descriptorHash;
    }

    public string Kernel { get; }

    public string DescriptorHash { get; }

    string IManagedKernel.Name => Kernel;

    /// <summary>Reads the call's inputs and writes every output.</summary>
    /// <remarks>Throw <see cref="TandemException"/> for a refusal with a status code; a cancelled call may throw <see cref="OperationCanceledException"/>.</remarks>
    public abstract void Run(ManagedKernelCall call, CancellationToken cancellationToken);

    /// <summary>A new stream, for a kernel whose contract has the <c>streaming</c> flag; null (the default) when the twin has no streaming form.</summary>
    public virtual ManagedKernelStream? OpenStream() => null;

    void IManagedKernel.Run(KernelCall call, CancellationToken cancellationToken) => Run(new ManagedKernelCall(call), cancellationToken);

    ISynchronousKernelStream? IManagedKernel.OpenStream() => OpenStream() is { } stream ? new ManagedStreamAdapter(stream) : null;

    private sealed class ManagedStreamAdapter(ManagedKernelStream stream) : ISynchronousKernelStream
    {
        public void Append(ReadOnlySpan<byte> data) => stream.Append(data);

        public void Finalize(Span<byte> output) => stream.Finalize(output);

        public void Dispose() => stream.Dispose();
    }
}

/// <summary>The state of one stream of a managed twin: data appended in chunks, then one result.</summary>
public abstract class ManagedKernelStream : IDisposable
{
    public abstract void Append(ReadOnlySpan<byte> data);

    /// <summary>Writes the result into <paramref name="output"/> (sized from the contract's output); no more data follows.</summary>
    public abstract void Finalize(Span<byte> output);

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// A C# implementation of a state kind: builds the managed state that twins
/// of the kernels reading it get from <see cref="ManagedKernelCall.State{TState}"/>.
/// Register it with <c>AddManagedStateKind&lt;T&gt;()</c>.
/// </summary>
public abstract class ManagedStateKind : IManagedStateKind
{
    protected ManagedStateKind(string kind)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        Kind = kind;
    }

    public string Kind { get; }

    /// <summary>Builds a state from its creation tensors (the kind's tensors in order, validated; copy what you keep). A state that is <see cref="IDisposable"/> is disposed with its handle.</summary>
    public abstract object Create(ManagedKernelCall tensors);

    /// <summary>Bytes the state holds, for reporting; 0 by default.</summary>
    public virtual long SizeBytes(object state) => 0;

    IKernelState IManagedStateKind.Create(KernelCall tensors)
    {
        var state = Create(new ManagedKernelCall(tensors));
        return new ManagedUserState(state, SizeBytes(state));
    }
}
