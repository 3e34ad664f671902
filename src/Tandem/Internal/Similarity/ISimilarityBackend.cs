using Tandem.Similarity;

namespace Tandem.Internal.Similarity;

/// <summary>A backend's vector collection; disposing releases the facade's reference.</summary>
internal interface ISimilarityCollection : IDisposable
{
    int Count { get; }

    int Dimension { get; }

    long SizeBytes { get; }
}

/// <summary>One backend's implementation of <c>similarity.topk</c>. Inputs are already validated.</summary>
internal interface ISimilarityBackend
{
    BackendKind Kind { get; }

    ISimilarityCollection CreateCollection(ReadOnlySpan<float> vectors, int count, int dimension, ReadOnlySpan<long> ids);

    /// <summary>Writes <c>batch × k</c> hits into <paramref name="ids"/> and <paramref name="scores"/>.</summary>
    ValueTask TopKAsync(ISimilarityCollection collection, ReadOnlyMemory<float> queries, int batch, int k, SimilarityMetric metric, long[] ids, float[] scores, CancellationToken cancellationToken);
}
