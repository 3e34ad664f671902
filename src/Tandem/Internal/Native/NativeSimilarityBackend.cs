using System.Buffers;
using System.Text;
using Tandem.Internal.Contracts;
using Tandem.Internal.Similarity;
using Tandem.Similarity;

namespace Tandem.Internal.Native;

/// <summary>
/// <c>similarity.topk</c> on libtandem.so. Queries and outputs cross by
/// pointer (pinned, never copied); short calls run synchronously, long ones
/// are submitted to the native pool and awaited.
/// </summary>
internal sealed class NativeSimilarityBackend(NativeKernel kernel, TandemOptions options) : ISimilarityBackend
{
    private static readonly byte[] CollectionKind = Encoding.UTF8.GetBytes(KernelContracts.CollectionKind);

    public BackendKind Kind => BackendKind.Native;

    public unsafe ISimilarityCollection CreateCollection(ReadOnlySpan<float> vectors, int count, int dimension, ReadOnlySpan<long> ids)
    {
        Span<NativeTensor> tensors = stackalloc NativeTensor[2];
        nint state;
        nint error;
        fixed (float* v = vectors)
        fixed (long* i = ids)
        fixed (byte* kind = CollectionKind)
        {
            tensors[0] = NativeTensor.Create(v, vectors.Length, NativeDType.F32, count, dimension);
            // dtype 0 marks the optional ids as omitted.
            tensors[1] = ids.IsEmpty ? default : NativeTensor.Create(i, ids.Length, NativeDType.I64, count);
            fixed (NativeTensor* t = tensors)
            {
                error = NativeMethods.tandem_state_create(kind, (nuint)CollectionKind.Length, t, 2, &state);
            }
        }

        NativeErrors.ThrowIfError(error, kernel.Name);
        var handle = new NativeStateHandle(state);
        return new NativeCollection(handle, count, dimension, (long)NativeMethods.tandem_state_size_bytes(state));
    }

    public async ValueTask TopKAsync(ISimilarityCollection collection, ReadOnlyMemory<float> queries, int batch, int k, SimilarityMetric metric, long[] ids, float[] scores, CancellationToken cancellationToken)
    {
        var target = (NativeCollection)collection;
        var work = (long)batch * target.Count * target.Dimension;
        var added = false;
        using var queryPin = queries.Pin();
        using var idPin = ids.AsMemory().Pin();
        using var scorePin = scores.AsMemory().Pin();
        try
        {
            // Keeps the state alive even if the collection is dropped meanwhile.
            try
            {
                target.Handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                throw new TandemException(TandemStatusCode.NotFound, "the collection was dropped before the call started", kernel.Name, BackendKind.Native);
            }

            var args = Arguments(queryPin, idPin, scorePin, queries.Length, batch, target.Dimension, k, metric);
            await kernel.RunAsync(target.Handle.DangerousGetHandle(), args, work < options.SyncWorkThreshold, options.CallTimeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (added)
            {
                target.Handle.DangerousRelease();
            }
        }
    }

    private static unsafe NativeCallArgs Arguments(MemoryHandle queries, MemoryHandle ids, MemoryHandle scores, int queryLength, int batch, int dimension, int k, SimilarityMetric metric)
    {
        var args = default(NativeCallArgs);
        args.AddInput(NativeTensor.Create((float*)queries.Pointer, queryLength, NativeDType.F32, batch, dimension));
        args.AddOutput(NativeTensor.Create((long*)ids.Pointer, batch * k, NativeDType.I64, batch, k));
        args.AddOutput(NativeTensor.Create((float*)scores.Pointer, batch * k, NativeDType.F32, batch, k));
        args.AddParam(NativeParam.Int(k));
        args.AddParam(NativeParam.Int((long)metric));
        return args;
    }
}

/// <summary>A collection held by the native library.</summary>
internal sealed class NativeCollection(NativeStateHandle handle, int count, int dimension, long sizeBytes) : ISimilarityCollection
{
    public NativeStateHandle Handle { get; } = handle;

    public int Count { get; } = count;

    public int Dimension { get; } = dimension;

    public long SizeBytes { get; } = sizeBytes;

    public void Dispose() => Handle.Dispose();
}
