using Tandem.Internal.Kernels;

namespace Tandem.Kernels;

/// <summary>
/// An open stream of a streaming kernel: append chunks, then finalize once.
/// One writer at a time. Made by <see cref="IKernelInvoker.OpenStreamAsync"/>.
/// </summary>
public sealed class KernelStream : IAsyncDisposable, IDisposable
{
    private readonly IKernelStream _stream;
    private readonly Action<TandemStatusCode> _completed;
    private bool _finalized;
    private bool _disposed;

    internal KernelStream(KernelContract contract, BackendKind backend, IKernelStream stream, Action<TandemStatusCode> completed)
    {
        Contract = contract;
        Backend = backend;
        _stream = stream;
        _completed = completed;
    }

    public KernelContract Contract { get; }

    public BackendKind Backend { get; }

    /// <summary>Appends <paramref name="data"/>; its memory may be reused once the task completes.</summary>
    /// <exception cref="TandemException">FAILED_PRECONDITION after finalizing; NOT_FOUND after disposal.</exception>
    public ValueTask AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        Unusable("append to") is { } error ? ValueTask.FromException(error) : _stream.AppendAsync(data, cancellationToken);

    /// <summary>Writes the result into <paramref name="output"/>, whose length the contract's output shape allows.</summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT for a length the contract refuses; FAILED_PRECONDITION when already finalized; NOT_FOUND after disposal.</exception>
    public async ValueTask FinalizeAsync(Memory<byte> output, CancellationToken cancellationToken = default)
    {
        if (Unusable("finalize") is { } error)
        {
            throw error;
        }

        Internal.Kernels.KernelInvoker.CheckStreamOutput(Contract, output.Length);
        _finalized = true;
        try
        {
            await _stream.FinalizeAsync(output, cancellationToken).ConfigureAwait(false);
            _completed(TandemStatusCode.Ok);
        }
        catch (TandemException e)
        {
            _completed(e.Code);
            throw;
        }
    }

    /// <summary>The result, for a kernel whose output has a fixed size.</summary>
    public async ValueTask<byte[]> FinalizeAsync(CancellationToken cancellationToken = default)
    {
        var output = new byte[Internal.Kernels.KernelInvoker.FixedStreamOutput(Contract)];
        await FinalizeAsync(output, cancellationToken).ConfigureAwait(false);
        return output;
    }

    public void Dispose()
    {
        _disposed = true;
        _stream.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        _disposed = true;
        return _stream.DisposeAsync();
    }

    private TandemException? Unusable(string what) =>
        _disposed ? new TandemException(TandemStatusCode.NotFound, $"cannot {what} a disposed stream of '{Contract.Name}'", Contract.Name, Backend)
        : _finalized ? new TandemException(TandemStatusCode.FailedPrecondition, $"cannot {what} a stream of '{Contract.Name}' that was finalized", Contract.Name, Backend)
        : null;
}
