using Tandem.Internal.Hashing;
using Tandem.Internal.Kernels;

namespace Tandem.Hashing;

/// <summary>
/// An incremental BLAKE3 hash: append any number of chunks of any size, then
/// finalize once. Not thread-safe: one writer at a time, each call completed
/// before the next. Appending after finalizing, finalizing twice, or using it
/// after disposal fail with specific codes, never corrupt state.
/// </summary>
/// <remarks>
/// A stream in process (<see cref="BackendKind.Managed"/> or
/// <see cref="BackendKind.Native"/>) takes both the synchronous and the
/// asynchronous methods, the latter completing on the caller's thread. A
/// <see cref="BackendKind.Remote"/> stream sends its data to a worker, so it
/// takes only <see cref="AppendAsync"/> and <see cref="FinalizeAsync"/>.
/// </remarks>
public sealed class Blake3Stream : IDisposable, IAsyncDisposable
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

    /// <exception cref="TandemException">FAILED_PRECONDITION after <see cref="Finalize"/> or on a Remote stream (use <see cref="AppendAsync"/>); NOT_FOUND after disposal.</exception>
    public void Append(ReadOnlySpan<byte> data) => InProcess("append to", nameof(AppendAsync)).Append(data);

    /// <summary>Appends <paramref name="data"/>; its memory may be reused once the task completes.</summary>
    /// <exception cref="TandemException">CANCELLED when <paramref name="cancellationToken"/> fires (a Remote stream, whose call is then cancelled, takes nothing more); FAILED_PRECONDITION after finalizing; NOT_FOUND after disposal.</exception>
    public ValueTask AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (Unusable("append to") is { } error)
        {
            return ValueTask.FromException(error);
        }

        var appending = _state.AppendAsync(data, cancellationToken);
        return appending.IsCompletedSuccessfully ? appending : ObserveAsync(appending, cancellationToken);
    }

    /// <summary>The digest of everything appended.</summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT for a bad length; FAILED_PRECONDITION when already finalized or on a Remote stream (use <see cref="FinalizeAsync"/>); NOT_FOUND after disposal.</exception>
    public byte[] Finalize(int outputLength = 32)
    {
        Blake3Hashing.ValidateOutputLength(outputLength);
        var state = InProcess("finalize", nameof(FinalizeAsync));
        var output = new byte[outputLength];
        state.Finalize(output);
        _finalized = true;
        return output;
    }

    /// <summary>The digest of everything appended.</summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT for a bad length; CANCELLED when <paramref name="cancellationToken"/> fires; FAILED_PRECONDITION when already finalized; NOT_FOUND after disposal.</exception>
    public async ValueTask<byte[]> FinalizeAsync(int outputLength = 32, CancellationToken cancellationToken = default)
    {
        Blake3Hashing.ValidateOutputLength(outputLength);
        if (Unusable("finalize") is { } error)
        {
            throw error;
        }

        var output = new byte[outputLength];
        await ObserveAsync(_state.FinalizeAsync(output, cancellationToken), cancellationToken).ConfigureAwait(false);
        _finalized = true;
        return output;
    }

    /// <summary>Releases the hash state; an unfinished remote stream's call is cancelled, without waiting for the worker.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _state.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return ValueTask.CompletedTask;
        }

        _disposed = true;
        return _state.DisposeAsync();
    }

    /// <summary>Surfaces the caller's cancellation as a <see cref="TandemException"/>, like every other failure.</summary>
    private async ValueTask ObserveAsync(ValueTask pending, CancellationToken cancellationToken)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the hash stream call was cancelled by the caller", Kernel, Backend, innerException: e);
        }
    }

    private ISynchronousKernelStream InProcess(string action, string asynchronous)
    {
        if (Unusable(action) is { } error)
        {
            throw error;
        }

        return _state as ISynchronousKernelStream
            ?? throw new TandemException(TandemStatusCode.FailedPrecondition, $"cannot {action} a {Backend} hash stream synchronously: it sends its data to a worker, which would block this thread; call {asynchronous}, or hash in process with a stream from OpenStream()", Kernel, Backend);
    }

    private TandemException? Unusable(string action)
    {
        if (_disposed)
        {
            return new TandemException(TandemStatusCode.NotFound, $"cannot {action} a hash stream that was disposed", Kernel, Backend);
        }

        if (_finalized)
        {
            return new TandemException(TandemStatusCode.FailedPrecondition, $"cannot {action} a hash stream that is already finalized; a stream yields one digest", Kernel, Backend);
        }

        return null;
    }
}
