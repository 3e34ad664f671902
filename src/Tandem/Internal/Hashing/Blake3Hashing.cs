using System.Buffers;
using Tandem.Hashing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Hashing;

/// <summary>The <see cref="IBlake3Hashing"/> facade.</summary>
internal sealed class Blake3Hashing(KernelBackends backends) : IBlake3Hashing
{
    /// <summary>Bytes read from a stream per chunk.</summary>
    internal const int ChunkSize = 1 << 20;

    public byte[] Hash(ReadOnlySpan<byte> data, int outputLength = 32)
    {
        ValidateOutputLength(outputLength);
        var output = new byte[outputLength];
        Run(data, output);
        return output;
    }

    public void Hash(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        ValidateOutputLength(destination.Length);
        if (data.Overlaps(destination))
        {
            // The same refusal the library gives; checked here so Managed refuses it too.
            throw TandemException.Invalid(KernelContracts.HashBlake3, "output 0 overlaps input 0; outputs need their own buffers");
        }

        Run(data, destination);
    }

    private unsafe void Run(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        var backend = backends.InProcessFor(KernelContracts.HashBlake3, data.Length);
        fixed (byte* input = data)
        fixed (byte* digest = destination)
        {
            using var call = KernelCall.Rent(KernelContracts.Blake3)
                .Input(input, data.Length, data.Length)
                .Output(digest, destination.Length, destination.Length);
            backends.Invoke(backend, call);
        }
    }

    public async ValueTask<byte[]> HashAsync(ReadOnlyMemory<byte> data, int outputLength = 32, CancellationToken cancellationToken = default)
    {
        ValidateOutputLength(outputLength);
        var output = new byte[outputLength];
        var backend = backends.For(KernelContracts.HashBlake3, data.Length);
        // A byte hashed is about one unit of work: large inputs leave the caller's thread.
        using var call = new KernelCall(KernelContracts.Blake3) { Work = data.Length }
            .Input(data, data.Length)
            .Output(output.AsMemory(), outputLength);
        await backends.InvokeAsync(backend, call, cancellationToken).ConfigureAwait(false);
        return output;
    }

    public async ValueTask<byte[]> HashAsync(Stream stream, int outputLength = 32, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ValidateOutputLength(outputLength);
        var started = backends.Timestamp();
        var backend = backends.For(KernelContracts.HashBlake3);
        // Anything but a TandemException is the caller's stream failing mid-read.
        var code = TandemStatusCode.Aborted;
        IKernelStream? state = null;
        var buffers = new[] { ArrayPool<byte>.Shared.Rent(ChunkSize), ArrayPool<byte>.Shared.Rent(ChunkSize) };
        Task? hashing = null;
        try
        {
            state = await backend.OpenStreamAsync(KernelContracts.HashBlake3, cancellationToken).ConfigureAwait(false);
            // Read chunk n+1 while chunk n is hashed: at most two chunks in
            // flight, whatever the stream's size.
            for (var current = 0; ; current ^= 1)
            {
                var read = await ReadChunkAsync(stream, buffers[current], cancellationToken).ConfigureAwait(false);
                if (hashing is not null)
                {
                    await hashing.ConfigureAwait(false);
                }

                if (read == 0)
                {
                    break;
                }

                hashing = Append(state, new ReadOnlyMemory<byte>(buffers[current], 0, read), cancellationToken);
            }

            var output = new byte[outputLength];
            await state.FinalizeAsync(output, cancellationToken).ConfigureAwait(false);
            code = TandemStatusCode.Ok;
            return output;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            code = TandemStatusCode.Cancelled;
            throw new TandemException(TandemStatusCode.Cancelled, "hashing the stream was cancelled by the caller", KernelContracts.HashBlake3);
        }
        catch (TandemException e)
        {
            code = e.Code;
            throw;
        }
        finally
        {
            backends.RecordStream(KernelContracts.HashBlake3, backend.Kind, started, code);
            if (hashing is not null)
            {
                // Never return a buffer that is still being hashed.
                await hashing.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }

            if (state is not null)
            {
                await state.DisposeAsync().ConfigureAwait(false);
            }

            ArrayPool<byte>.Shared.Return(buffers[0]);
            ArrayPool<byte>.Shared.Return(buffers[1]);
        }
    }

    public Blake3Stream OpenStream()
    {
        var backend = backends.InProcessFor(KernelContracts.HashBlake3);
        return new Blake3Stream(backend.OpenStream(KernelContracts.HashBlake3), backend.Kind);
    }

    public async ValueTask<Blake3Stream> OpenStreamAsync(CancellationToken cancellationToken = default)
    {
        var backend = backends.For(KernelContracts.HashBlake3);
        try
        {
            return new Blake3Stream(await backend.OpenStreamAsync(KernelContracts.HashBlake3, cancellationToken).ConfigureAwait(false), backend.Kind);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "opening the hash stream was cancelled by the caller", KernelContracts.HashBlake3, backend.Kind, innerException: e);
        }
    }

    /// <summary>
    /// In process, hashing a chunk takes CPU time: it runs on another thread
    /// while the next chunk is read. A remote stream only sends the chunk,
    /// which holds no thread.
    /// </summary>
    private static Task Append(IKernelStream state, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) =>
        state is ISynchronousKernelStream inProcess
            ? Task.Run(() => inProcess.Append(chunk.Span), cancellationToken)
            : state.AppendAsync(chunk, cancellationToken).AsTask();

    internal static void ValidateOutputLength(int outputLength)
    {
        if (outputLength < 1 || outputLength > KernelContracts.MaxHashOutput)
        {
            throw TandemException.Invalid(KernelContracts.HashBlake3, $"output 'digest' must be 1 to {KernelContracts.MaxHashOutput} bytes long, got {outputLength}");
        }
    }

    private static async ValueTask<int> ReadChunkAsync(Stream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < ChunkSize)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(total, ChunkSize - total), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }
}
