using System.Numerics.Tensors;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Similarity;

namespace Tandem.Internal.Managed;

/// <summary>
/// <c>similarity.topk</c> in C#: the fallback and the reference. Same
/// definitions as the Rust kernel (scores, clamping, tie order), vectorised
/// with System.Numerics.Tensors and parallel over chunks of the collection.
/// </summary>
internal sealed class ManagedTopK : IManagedKernel
{
    private const int RowBlock = 16;

    public string Name => KernelContracts.SimilarityTopK;

    public string DescriptorHash => ReferenceKernels.SimilarityTopk.Hash;

    public void Run(KernelCall call, CancellationToken cancellationToken) => Search(
        (ManagedCollection)call.State!,
        call.InputMemory<float>(0),
        (int)call.InputDim(0, 0),
        (int)call.OutputDim(0, 1),
        (SimilarityMetric)call.IntParam(1),
        call.OutputMemory<long>(0),
        call.OutputMemory<float>(1),
        cancellationToken);

    internal static void Search(ManagedCollection c, ReadOnlyMemory<float> queryMemory, int batch, int k, SimilarityMetric metric, Memory<long> idMemory, Memory<float> scoreMemory, CancellationToken cancellationToken)
    {
        var dim = c.Dimension;
        var queryNormsSq = new float[batch];
        var queryNorms = new float[batch];
        var queries = queryMemory.Span;
        for (var q = 0; q < batch; q++)
        {
            var row = queries.Slice(q * dim, dim);
            queryNormsSq[q] = TensorPrimitives.Dot(row, row);
            queryNorms[q] = MathF.Sqrt(queryNormsSq[q]);
        }

        var chunkRows = ChunkRows(c.Count);
        var chunkCount = (c.Count + chunkRows - 1) / chunkRows;
        var partials = new ManagedTopKHeap[chunkCount][];
        try
        {
            Parallel.For(0, chunkCount, new ParallelOptions { CancellationToken = cancellationToken }, chunk =>
            {
                var start = chunk * chunkRows;
                partials[chunk] = ScanChunk(c, queryMemory.Span, batch, k, metric, queryNormsSq, queryNorms, start, Math.Min(start + chunkRows, c.Count), cancellationToken);
            });
        }
        catch (OperationCanceledException)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller", KernelContracts.SimilarityTopK, BackendKind.Managed);
        }

        var hits = new List<(float Key, long Id)>(k * chunkCount);
        var ids = idMemory.Span;
        var scores = scoreMemory.Span;
        for (var q = 0; q < batch; q++)
        {
            hits.Clear();
            foreach (var partial in partials)
            {
                partial[q].CopyTo(hits);
            }

            hits.Sort(static (a, b) => ManagedTopKHeap.Better(a.Key, a.Id, b.Key, b.Id) ? -1 : ManagedTopKHeap.Better(b.Key, b.Id, a.Key, a.Id) ? 1 : 0);
            for (var slot = 0; slot < k; slot++)
            {
                ids[(q * k) + slot] = hits[slot].Id;
                scores[(q * k) + slot] = metric == SimilarityMetric.L2 ? -hits[slot].Key : hits[slot].Key;
            }
        }
    }

    private static int ChunkRows(int count)
    {
        var target = Math.Max(1024, (count + (Environment.ProcessorCount * 4) - 1) / (Environment.ProcessorCount * 4));
        return (target + RowBlock - 1) / RowBlock * RowBlock;
    }

    private static ManagedTopKHeap[] ScanChunk(ManagedCollection c, ReadOnlySpan<float> queries, int batch, int k, SimilarityMetric metric, float[] queryNormsSq, float[] queryNorms, int start, int end, CancellationToken cancellationToken)
    {
        var dim = c.Dimension;
        var values = c.Values.AsSpan();
        var heaps = new ManagedTopKHeap[batch];
        for (var q = 0; q < batch; q++)
        {
            heaps[q] = new ManagedTopKHeap(k);
        }

        for (var row0 = start; row0 < end; row0 += RowBlock)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rowEnd = Math.Min(row0 + RowBlock, end);
            for (var q = 0; q < batch; q++)
            {
                var query = queries.Slice(q * dim, dim);
                var heap = heaps[q];
                for (var row = row0; row < rowEnd; row++)
                {
                    var dot = TensorPrimitives.Dot(query, values.Slice(row * dim, dim));
                    var key = metric switch
                    {
                        SimilarityMetric.Dot => dot,
                        SimilarityMetric.Cosine => c.Norms[row] == 0f ? 0f : dot / (queryNorms[q] * c.Norms[row]),
                        _ => -MathF.Max((queryNormsSq[q] + c.NormsSq[row]) - (2f * dot), 0f),
                    };
                    heap.Offer(key, c.Id(row));
                }
            }
        }

        return heaps;
    }
}

/// <summary>A collection held in managed memory.</summary>
internal sealed class ManagedCollection : IKernelState
{
    public ManagedCollection(ReadOnlySpan<float> vectors, int count, int dimension, ReadOnlySpan<long> ids)
    {
        Count = count;
        Dimension = dimension;
        Values = vectors.ToArray();
        Ids = ids.IsEmpty ? null : ids.ToArray();
        NormsSq = new float[count];
        Norms = new float[count];
        for (var row = 0; row < count; row++)
        {
            var v = Values.AsSpan(row * dimension, dimension);
            NormsSq[row] = TensorPrimitives.Dot(v, v);
            Norms[row] = MathF.Sqrt(NormsSq[row]);
        }
    }

    public int Count { get; }

    public int Dimension { get; }

    public float[] Values { get; }

    public float[] NormsSq { get; }

    public float[] Norms { get; }

    public long[]? Ids { get; }

    public long SizeBytes => (Values.LongLength * 4) + (NormsSq.LongLength * 8) + ((Ids?.LongLength ?? 0) * 8);

    public BackendKind Backend => BackendKind.Managed;

    public long Id(int row) => Ids is null ? row : Ids[row];

    public void Dispose()
    {
    }
}
