using Tandem.Internal.Hashing;
using Tandem.Internal.Kernels;

namespace Tandem.Hashing;

/// <summary>
/// An incremental BLAKE3 hash: <see cref="Append"/> any number of chunks of
/// any size, then <see cref="Finalize"/> once. Not thread-safe: one writer at
/// a time. Appending after finalizing, finalizing twice, or using it after
/// disposal fail with specific codes, never corrupt state.
/// </summary>
public sealed class Blake3Stream : IDisposable
{
    private const string Kernel = "hash.blake3";
    private readonly IKernelStream _state;
    private bool _finalized;
    private bool _disposed;

    internal Blake3Stream(IKernelStream state, BackendKind backend)
    {
        _state = state;
        Backend = backend;
    }

    /// <summary>The backend holding the hash state.</summary>
    public BackendKind Backend { get; }

    /// <exception cref="TandemException">FAILED_PRECONDITION after <see cref="Finalize"/>; NOT_FOUND after disposal.</exception>
    public void Append(ReadOnlySpan<byte> data)
    {
        ThrowIfUnusable("append to");
        _state.Append(data);
    }

    /// <summary>The digest of everything appended.</summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT for a bad length; FAILED_PRECONDITION when already finalized; NOT_FOUND after disposal.</exception>
    public byte[] Finalize(int outputLength = 32)
    {
        Blake3Hashing.ValidateOutputLength(outputLength);
        ThrowIfUnusable("finalize");
        var output = new byte[outputLength];
        _state.Finalize(output);
        _finalized = true;
        return output;
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _state.Dispose();
        }
    }

    private void ThrowIfUnusable(string action)
    {
        if (_disposed)
        {
            throw new TandemException(TandemStatusCode.NotFound, $"cannot {action} a hash stream that was disposed", Kernel, Backend);
        }

        if (_finalized)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, $"cannot {action} a hash stream that is already finalized; a stream yields one digest", Kernel, Backend);
        }
    }
}
