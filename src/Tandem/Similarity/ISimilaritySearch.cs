namespace Tandem.Similarity;

/// <summary>
/// <c>similarity.topk</c>: named collections of f32 vectors and top-k search
/// over them by dot product, cosine similarity or squared L2 distance.
/// Failures surface as <see cref="TandemException"/>.
/// </summary>
public interface ISimilaritySearch
{
    /// <summary>
    /// Copies <paramref name="vectors"/> (row-major, <paramref name="dimension"/>
    /// components per row, all finite) into a new collection. Without
    /// <paramref name="ids"/>, a row's id is its index; given ids must be unique.
    /// </summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT for bad input, ALREADY_EXISTS for a taken name.</exception>
    ValueTask<SimilarityCollectionInfo> CreateCollectionAsync(string name, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids = default, CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates a collection as <see cref="CreateCollectionAsync"/> does and
    /// stores it in the state repository (<see cref="TandemOptions.StateRepository"/>)
    /// as (<paramref name="storedName"/>, <paramref name="version"/>), written
    /// once and durably: <see cref="LoadCollectionAsync"/> finds it again after
    /// a restart or on another host sharing the repository.
    /// </summary>
    /// <exception cref="TandemException">As <see cref="CreateCollectionAsync"/>; ALREADY_EXISTS when that stored version exists; FAILED_PRECONDITION without a repository.</exception>
    ValueTask<SimilarityCollectionInfo> StoreCollectionAsync(string name, string storedName, long version, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids = default, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes stored collection (<paramref name="storedName"/>, <paramref name="version"/>;
    /// 0 = the newest) available as <paramref name="name"/>: memory-mapped on
    /// the native backend (nothing copied), its checksum verified first.
    /// </summary>
    /// <exception cref="TandemException">NOT_FOUND, DATA_LOSS for a damaged file, FAILED_PRECONDITION for another kind or without a repository, ALREADY_EXISTS for a taken name.</exception>
    ValueTask<SimilarityCollectionInfo> LoadCollectionAsync(string name, string storedName, long version = 0, CancellationToken cancellationToken = default);

    /// <summary>Drops a collection; calls already running on it complete normally.</summary>
    /// <returns><see langword="false"/> when no collection has that name.</returns>
    bool DropCollection(string name);

    /// <summary>The collections that exist now.</summary>
    IReadOnlyList<SimilarityCollectionInfo> Collections { get; }

    /// <summary>
    /// The <paramref name="k"/> best rows of <paramref name="collection"/> for
    /// each query; <paramref name="queries"/> holds whole rows of the
    /// collection's dimension. The memory is read in place, not copied, and
    /// must not change until the call completes.
    /// </summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT, NOT_FOUND, CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or INTERNAL.</exception>
    ValueTask<TopKResult> TopKAsync(string collection, ReadOnlyMemory<float> queries, int k, SimilarityMetric metric = SimilarityMetric.Dot, CancellationToken cancellationToken = default);
}
