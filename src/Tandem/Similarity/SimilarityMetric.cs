namespace Tandem.Similarity;

/// <summary>How <c>similarity.topk</c> scores a query against a row.</summary>
public enum SimilarityMetric
{
    /// <summary>Dot product; highest first.</summary>
    Dot = 0,

    /// <summary>Cosine similarity; highest first. 0 against a zero row; a zero query is invalid.</summary>
    Cosine = 1,

    /// <summary>Squared Euclidean distance <c>(|q|² + |x|²) − 2·q·x</c>, clamped at 0; lowest first.</summary>
    L2 = 2,
}
