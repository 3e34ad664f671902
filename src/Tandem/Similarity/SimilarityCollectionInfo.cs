namespace Tandem.Similarity;

/// <summary>A vector collection held by a backend.</summary>
/// <param name="Name">The name calls refer to it by.</param>
/// <param name="Count">Number of vectors.</param>
/// <param name="Dimension">Components per vector.</param>
/// <param name="Backend">The backend holding it.</param>
/// <param name="SizeBytes">Memory the backend holds for it.</param>
public sealed record SimilarityCollectionInfo(string Name, int Count, int Dimension, BackendKind Backend, long SizeBytes)
{
    /// <summary>Its version in the state repository, when it was stored there or loaded from it; 0 otherwise.</summary>
    public long StoredVersion { get; init; }
}
