namespace Tandem.Similarity;

/// <summary>
/// The hits of a top-k call: <see cref="BatchSize"/> rows of <see cref="K"/>
/// hits each, best first (ties go to the lower id). <see cref="K"/> is the
/// requested k, or the collection's size when that is smaller.
/// </summary>
public sealed class TopKResult
{
    internal TopKResult(int batchSize, int k, long[] ids, float[] scores, BackendKind backend)
    {
        BatchSize = batchSize;
        K = k;
        Ids = ids;
        Scores = scores;
        Backend = backend;
    }

    public int BatchSize { get; }

    public int K { get; }

    /// <summary>Row-major ids, <c>BatchSize × K</c>.</summary>
    public long[] Ids { get; }

    /// <summary>Row-major scores, <c>BatchSize × K</c>.</summary>
    public float[] Scores { get; }

    /// <summary>The backend that computed the result.</summary>
    public BackendKind Backend { get; }

    public ReadOnlySpan<long> IdsOf(int query) => Ids.AsSpan(query * K, K);

    public ReadOnlySpan<float> ScoresOf(int query) => Scores.AsSpan(query * K, K);
}
