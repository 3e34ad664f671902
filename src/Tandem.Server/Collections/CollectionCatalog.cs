using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Tandem.Server.Hosting;
using Tandem.Similarity;

namespace Tandem.Server.Collections;

/// <summary>A published collection: its public name and the Tandem state serving it.</summary>
internal sealed record CatalogEntry(string Name, string StateName, int Count, int Dimension, BackendKind Backend, long SizeBytes, DateTimeOffset CreatedAt, float[] Vectors, long[]? Ids);

/// <summary>
/// The service's vector collections by public name. A collection becomes
/// visible only once its Tandem state is fully built, so a failed or
/// abandoned upload never shows. Each entry keeps the vectors it was created
/// from, so when the <c>similarity.topk</c> backend is switched (a feature
/// flag) every collection is rebuilt on the new backend and swapped in
/// atomically: searches keep working throughout.
/// </summary>
internal sealed partial class CollectionCatalog : IDisposable
{
    private const string Kernel = "similarity.topk";
    private const int MaxNameLength = 128;

    private readonly ISimilaritySearch _search;
    private readonly IKernelRouting _routing;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, CatalogEntry> _entries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _reserved = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _moving = new(1, 1);
    private readonly IDisposable? _reload;
    private readonly CancellationTokenSource _stopping = new();
    private long _generation;
    private Task _move = Task.CompletedTask;

    public CollectionCatalog(ISimilaritySearch search, IKernelRouting routing, IOptionsMonitor<TandemOptions> options, TimeProvider time, ILogger<CollectionCatalog> logger)
    {
        _search = search;
        _routing = routing;
        _time = time;
        _logger = logger;
        _reload = options.OnChange(_ => _move = MoveToServingBackendAsync());
    }

    public IReadOnlyList<CatalogEntry> Entries => [.. _entries.Values.OrderBy(e => e.Name, StringComparer.Ordinal)];

    /// <summary>Completes when collections have moved to the backend the current options choose.</summary>
    public Task Moved => _move;

    public bool TryGet(string name, out CatalogEntry entry) => _entries.TryGetValue(name, out entry!);

    public async Task<CatalogEntry> CreateAsync(string name, float[] vectors, int dimension, long[]? ids, CancellationToken cancellationToken)
    {
        ValidateName(name);
        lock (_reserved)
        {
            if (_entries.ContainsKey(name) || !_reserved.Add(name))
            {
                throw new TandemException(TandemStatusCode.AlreadyExists, $"a collection named '{name}' already exists or is being created; drop it first or choose another name", Kernel);
            }
        }

        try
        {
            var entry = await BuildAsync(name, vectors, dimension, ids, cancellationToken);
            _entries[name] = entry;
            ServerLog.CollectionCreated(_logger, name, entry.Count, dimension, entry.Backend);
            return entry;
        }
        finally
        {
            lock (_reserved)
            {
                _reserved.Remove(name);
            }
        }
    }

    public bool Drop(string name)
    {
        if (!_entries.TryRemove(name, out var entry))
        {
            return false;
        }

        _search.DropCollection(entry.StateName);
        ServerLog.CollectionDropped(_logger, name);
        return true;
    }

    /// <summary>Top-k over a collection by its public name; a search that races a backend move retries on the moved collection.</summary>
    public async Task<TopKResult> SearchAsync(string name, ReadOnlyMemory<float> queries, int k, SimilarityMetric metric, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (!_entries.TryGetValue(name, out var entry))
            {
                throw new TandemException(TandemStatusCode.NotFound, $"no collection named '{name}'; list them with GET /collections or create it with POST /collections", Kernel);
            }

            try
            {
                return await _search.TopKAsync(entry.StateName, queries, k, metric, cancellationToken);
            }
            catch (TandemException e) when (e.Code == TandemStatusCode.NotFound && attempt == 0 && _entries.TryGetValue(name, out var now) && now != entry)
            {
                // Moved to another backend between the lookup and the call.
            }
        }
    }

    private async Task<CatalogEntry> BuildAsync(string name, float[] vectors, int dimension, long[]? ids, CancellationToken cancellationToken)
    {
        var stateName = $"{name}@{Interlocked.Increment(ref _generation)}";
        var info = await _search.CreateCollectionAsync(stateName, vectors, dimension, ids, cancellationToken);
        return new CatalogEntry(name, stateName, info.Count, info.Dimension, info.Backend, info.SizeBytes, _time.GetUtcNow(), vectors, ids);
    }

    private async Task MoveToServingBackendAsync()
    {
        await _moving.WaitAsync(_stopping.Token);
        try
        {
            foreach (var entry in _entries.Values)
            {
                var target = ServingBackend();
                if (target is not { } backend || entry.Backend == backend || _stopping.IsCancellationRequested)
                {
                    continue;
                }

                try
                {
                    var moved = await BuildAsync(entry.Name, entry.Vectors, entry.Dimension, entry.Ids, _stopping.Token);
                    if (_entries.TryUpdate(entry.Name, moved with { CreatedAt = entry.CreatedAt }, entry))
                    {
                        _search.DropCollection(entry.StateName);
                        ServerLog.CollectionMoved(_logger, entry.Name, entry.Backend, moved.Backend);
                    }
                    else
                    {
                        _search.DropCollection(moved.StateName);
                    }
                }
                catch (Exception e) when (e is TandemException or OperationCanceledException)
                {
                    ServerLog.CollectionMoveFailed(_logger, entry.Name, entry.Backend, backend, e);
                }
            }
        }
        finally
        {
            _moving.Release();
        }
    }

    private BackendKind? ServingBackend()
    {
        foreach (var route in _routing.Routes)
        {
            if (route.Kernel == Kernel)
            {
                return route.Serving;
            }
        }

        return null;
    }

    private static void ValidateName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || !NamePattern().IsMatch(name))
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"collection name must be 1 to {MaxNameLength} characters of letters, digits, '.', '_' or '-', got '{name}'", Kernel);
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9._-]+$")]
    private static partial System.Text.RegularExpressions.Regex NamePattern();

    public void Dispose()
    {
        _reload?.Dispose();
        _stopping.Cancel();
    }
}
