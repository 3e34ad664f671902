using Tandem.Internal.Kernels;

namespace Tandem.Kernels;

/// <summary>
/// A state (of a kind a kernel library declares) held by one backend, made
/// by <see cref="IKernelInvoker.CreateStateAsync"/>. Set it as
/// <see cref="KernelRequest.State"/> to call a kernel that reads it; dispose
/// it to release it (calls in flight keep what they use).
/// </summary>
public sealed class KernelState : IDisposable
{
    private readonly Action<IKernelState> _release;
    private int _disposed;

    internal KernelState(StateKindContract kind, IKernelBackend backend, IKernelState state, IReadOnlyDictionary<string, long> symbols, Action<IKernelState> release)
    {
        Kind = kind;
        BackendImpl = backend;
        Inner = state;
        Symbols = symbols;
        _release = release;
    }

    public StateKindContract Kind { get; }

    public BackendKind Backend => BackendImpl.Kind;

    public long SizeBytes => Inner.SizeBytes;

    internal IKernelBackend BackendImpl { get; }

    internal IKernelState Inner { get; }

    /// <summary>Sizes of the symbols the creation tensors bound ("n", "dim"), for sizing outputs.</summary>
    internal IReadOnlyDictionary<string, long> Symbols { get; }

    internal bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _release(Inner);
        }
    }
}
