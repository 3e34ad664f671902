using System.Collections.Concurrent;
using System.Numerics.Tensors;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Internal.States;
using Tandem.Similarity;

namespace Tandem.Internal.Similarity;

/// <summary>
/// The <see cref="ISimilaritySearch"/> facade: validates every call against
/// the <c>similarity.topk</c> contract, keeps the named collections, and runs
/// calls on the backend that holds the collection.
/// </summary>
internal sealed class SimilaritySearch(KernelBackends backends) : ISimilaritySearch, IDisposable
{
    private const string Kernel = KernelContracts.SimilarityTopK;
    private const int MaxNameLength = 256;

    private readonly ConcurrentDictionary<string, Entry> _collections = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    public IReadOnlyList<SimilarityCollectionInfo> Collections => [.. _collections.Values.Select(e => e.Info).OrderBy(i => i.Name, StringComparer.Ordinal)];

    private readonly StateRepositoryService _repository = new(backends);

    public ValueTask<SimilarityCollectionInfo> CreateCollectionAsync(string name, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids = default, CancellationToken cancellationToken = default) =>
        BuildAsync(name, vectors, dimension, ids, async call =>
        {
            var backend = backends.For(Kernel);
            return (backend, await backend.CreateStateAsync(KernelContracts.CollectionKind, call, cancellationToken).ConfigureAwait(false), 0L);
        }, cancellationToken);

    public ValueTask<SimilarityCollectionInfo> StoreCollectionAsync(string name, string storedName, long version, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids = default, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(storedName);
        return BuildAsync(name, vectors, dimension, ids, async call =>
        {
            var stored = await _repository.StoreAsync(KernelContracts.CollectionKind, storedName, version, call, cancellationToken).ConfigureAwait(false);
            return (stored.Backend, stored.State, (long)stored.Manifest.Version);
        }, cancellationToken);
    }

    public async ValueTask<SimilarityCollectionInfo> LoadCollectionAsync(string name, string storedName, long version = 0, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        ValidateName(name);
        ArgumentNullException.ThrowIfNull(storedName);
        ThrowIfTaken(name);
        ThrowIfCancelledBeforeStart(cancellationToken);
        // Mapping is cheap, but verifying a large file's checksum is not: off the caller's thread.
        var stored = await Task.Run(() => _repository.LoadAsync(KernelContracts.CollectionKind, storedName, version, cancellationToken).AsTask(), cancellationToken).ConfigureAwait(false);
        var vectors = stored.Manifest.Tensors.FirstOrDefault(t => t.Name == "vectors");
        if (vectors is null || vectors.Shape.Count != 2)
        {
            stored.State.Dispose();
            throw new TandemException(TandemStatusCode.DataLoss, $"stored collection '{storedName}' version {stored.Manifest.Version} has no 'vectors' tensor of rank 2", Kernel);
        }

        var info = new SimilarityCollectionInfo(name, checked((int)vectors.Shape[0]), checked((int)vectors.Shape[1]), stored.Backend.Kind, stored.State.SizeBytes) { StoredVersion = (long)stored.Manifest.Version };
        return Register(info, stored.Backend, stored.State);
    }

    /// <summary>Validates a collection's input, builds its state with <paramref name="build"/> off the caller's thread and registers it.</summary>
    private async ValueTask<SimilarityCollectionInfo> BuildAsync(string name, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids, Func<KernelCall, Task<(IKernelBackend Backend, IKernelState State, long Version)>> build, CancellationToken cancellationToken)
    {
        ThrowIfDisposed();
        ValidateName(name);
        ThrowIfTaken(name);
        var count = ValidateCollection(vectors.Span, dimension, ids.Span);
        ThrowIfCancelledBeforeStart(cancellationToken);
        (IKernelBackend Backend, IKernelState State, long Version) built;
        try
        {
            // Copying and normalising a large collection takes a while; keep it
            // off the caller's thread (a remote backend then replicates it
            // without holding any thread).
            built = await Task.Run(
                async () =>
                {
                    using var tensors = new KernelCall(KernelContracts.TopK).Input(vectors, count, dimension);
                    _ = ids.IsEmpty ? tensors.Absent() : tensors.Input(ids, count);
                    return await build(tensors).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "creating the collection was cancelled by the caller; nothing was kept", Kernel, backends.For(Kernel).Kind, innerException: e);
        }

        var info = new SimilarityCollectionInfo(name, count, dimension, built.Backend.Kind, built.State.SizeBytes) { StoredVersion = built.Version };
        return Register(info, built.Backend, built.State);
    }

    private SimilarityCollectionInfo Register(SimilarityCollectionInfo info, IKernelBackend backend, IKernelState collection)
    {
        if (!_collections.TryAdd(info.Name, new Entry(info, backend, collection)))
        {
            collection.Dispose();
            throw new TandemException(TandemStatusCode.AlreadyExists, $"a collection named '{info.Name}' was created concurrently; drop it first or choose another name", Kernel);
        }

        return info;
    }

    private void ThrowIfTaken(string name)
    {
        if (_collections.ContainsKey(name))
        {
            throw new TandemException(TandemStatusCode.AlreadyExists, $"a collection named '{name}' already exists; drop it first or choose another name", Kernel);
        }
    }

    public bool DropCollection(string name)
    {
        ThrowIfDisposed();
        if (name is null || !_collections.TryRemove(name, out var entry))
        {
            return false;
        }

        backends.Cache.Invalidate(entry.Collection);
        entry.Collection.Dispose();
        return true;
    }

    public async ValueTask<TopKResult> TopKAsync(string collection, ReadOnlyMemory<float> queries, int k, SimilarityMetric metric = SimilarityMetric.Dot, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (collection is null || !_collections.TryGetValue(collection, out var entry))
        {
            throw new TandemException(TandemStatusCode.NotFound, $"no collection named '{collection}'; create it with CreateCollectionAsync first", Kernel);
        }

        var batch = ValidateQueries(queries.Span, entry.Info.Dimension, k, metric);
        ThrowIfCancelledBeforeStart(cancellationToken);

        // k itself is checked against the contract with the call; clamping
        // here only keeps a bad k from sizing the result arrays.
        var kEffective = Math.Clamp(k, 1, entry.Info.Count);
        if ((long)batch * kEffective > Array.MaxLength)
        {
            throw TandemException.Invalid(Kernel, $"the result would hold {(long)batch * kEffective} hits ({batch} queries × k {kEffective}); split the batch");
        }

        var ids = new long[batch * kEffective];
        var scores = new float[batch * kEffective];
        using var call = new KernelCall(KernelContracts.TopK)
        {
            State = entry.Collection,
            Work = (long)batch * entry.Info.Count * entry.Info.Dimension,
        };
        call.Input(queries, batch, entry.Info.Dimension)
            .Output(ids.AsMemory(), batch, kEffective)
            .Output(scores.AsMemory(), batch, kEffective)
            .Param(k)
            .Param((long)metric);
        await backends.InvokeAsync(entry.Backend, call, cancellationToken).ConfigureAwait(false);
        return new TopKResult(batch, kEffective, ids, scores, entry.Backend.Kind);
    }

    public void Dispose()
    {
        _disposed = true;
        foreach (var name in _collections.Keys)
        {
            if (_collections.TryRemove(name, out var entry))
            {
                entry.Collection.Dispose();
            }
        }
    }

    /// <summary>Checks a collection's input; returns its row count.</summary>
    internal static int ValidateCollection(ReadOnlySpan<float> vectors, int dimension, ReadOnlySpan<long> ids)
    {
        if (dimension <= 0)
        {
            throw TandemException.Invalid(Kernel, $"tensor 'vectors' has dimension {dimension}; vectors need at least one component");
        }

        if (vectors.IsEmpty)
        {
            throw TandemException.Invalid(Kernel, "tensor 'vectors' holds no rows; a collection needs at least one vector");
        }

        if (vectors.Length % dimension != 0)
        {
            throw TandemException.Invalid(Kernel, $"tensor 'vectors' has {vectors.Length} values, which is not a whole number of rows of dimension {dimension}");
        }

        var count = vectors.Length / dimension;
        if (!ids.IsEmpty && ids.Length != count)
        {
            throw TandemException.Invalid(Kernel, $"tensor 'ids' has {ids.Length} entries but there are {count} vectors");
        }

        if (Validation.FirstNonFiniteRow(vectors, dimension) is var row and >= 0)
        {
            throw TandemException.Invalid(Kernel, $"tensor 'vectors' row {row} contains NaN or infinity");
        }

        if (!ids.IsEmpty)
        {
            CheckUnique(ids);
        }

        return count;
    }

    /// <summary>Checks a top-k call's input; returns the batch size.</summary>
    /// <remarks>k, the metric and non-finite values are checked against the contract by <see cref="ContractValidator"/>.</remarks>
    internal static int ValidateQueries(ReadOnlySpan<float> queries, int dimension, int k, SimilarityMetric metric)
    {
        if (queries.IsEmpty)
        {
            throw TandemException.Invalid(Kernel, "tensor 'queries' holds no rows; send at least one query");
        }

        if (queries.Length % dimension != 0)
        {
            throw TandemException.Invalid(Kernel, $"tensor 'queries' has {queries.Length} values, which is not a whole number of rows of the collection's dimension {dimension}");
        }

        var batch = queries.Length / dimension;
        if (metric == SimilarityMetric.Cosine && Validation.FirstNonFiniteRow(queries, dimension) < 0)
        {
            for (var q = 0; q < batch; q++)
            {
                var query = queries.Slice(q * dimension, dimension);
                if (TensorPrimitives.Dot(query, query) == 0f)
                {
                    throw TandemException.Invalid(Kernel, $"tensor 'queries' row {q} has zero norm; cosine similarity is undefined for it");
                }
            }
        }

        return batch;
    }

    private static void CheckUnique(ReadOnlySpan<long> ids)
    {
        var order = new int[ids.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        var keys = ids.ToArray();
        Array.Sort(keys, order);
        for (var i = 1; i < keys.Length; i++)
        {
            if (keys[i] == keys[i - 1])
            {
                var (first, second) = (Math.Min(order[i], order[i - 1]), Math.Max(order[i], order[i - 1]));
                throw TandemException.Invalid(Kernel, $"tensor 'ids' entry {second} repeats id {keys[i]} of entry {first}; ids must be unique");
            }
        }
    }

    private static void ValidateName(string name)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > MaxNameLength || name.Any(char.IsControl))
        {
            throw TandemException.Invalid(Kernel, $"collection name must be 1 to {MaxNameLength} printable characters, got '{name}'");
        }
    }

    private static void ThrowIfCancelledBeforeStart(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller before it started", Kernel);
        }
    }

    private void ThrowIfDisposed()
    {
        if (_disposed)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, "the similarity search service has been disposed", Kernel);
        }
    }

    private sealed record Entry(SimilarityCollectionInfo Info, IKernelBackend Backend, IKernelState Collection);
}
