using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Tandem.Kernels;
using Tandem.Server.Hosting;
using Tandem.Similarity;

namespace Tandem.Server.Collections;

/// <summary>A published collection: its public name and the Tandem state serving it.</summary>
/// <remarks><see cref="Budget"/> is the entry's share of the collection budget, given back when it is dropped.</remarks>
/// <remarks>
/// A durable entry (<see cref="StoredVersion"/> &gt; 0) lives in the state
/// repository and keeps no vectors in memory: a backend move loads it again
/// from its file. Without a repository the entry keeps the vectors it was
/// created from, for the same purpose.
/// </remarks>
internal sealed record CatalogEntry(string Name, string StateName, int Count, int Dimension, BackendKind Backend, long SizeBytes, DateTimeOffset CreatedAt, ReadOnlyMemory<float> Vectors, long[]? Ids, CollectionBudget.Reservation Budget, long StoredVersion = 0);

/// <summary>
/// The service's vector collections by public name. A collection becomes
/// visible only once its Tandem state is fully built, so a failed or
/// abandoned upload never shows. With a state repository
/// (<c>Tandem:StateRepository</c>) every collection is stored there as
/// <c>collection.&lt;name&gt;</c>, written once before it becomes visible, and
/// <see cref="SyncWithRepositoryAsync"/> finds them all again at startup: a
/// restart keeps every collection. Without one, each entry keeps the vectors it was
/// created from. Servers sharing one repository converge on one catalog:
/// each re-reads it every <c>Server:Collections:RepositorySyncInterval</c>.
/// Either way, when the <c>similarity.topk</c> backend is
/// switched (a feature flag) every collection is rebuilt on the new backend
/// and swapped in atomically: searches keep working throughout.
/// </summary>
internal sealed partial class CollectionCatalog : IDisposable
{
    private const string Kernel = "similarity.topk";
    private const int MaxNameLength = 128;

    /// <summary>Prefix of a collection's name in the state repository, which other states may share.</summary>
    public const string StoredPrefix = "collection.";

    private readonly ISimilaritySearch _search;
    private readonly IStateRepository _repository;
    private readonly CollectionBudget _budget;
    private readonly IKernelRouting _routing;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, CatalogEntry> _entries = new(StringComparer.Ordinal);
    private readonly HashSet<string> _reserved = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _moving = new(1, 1);
    private readonly SemaphoreSlim _syncing = new(1, 1);
    // Stored versions that failed to load, so a sync logs a damaged file once.
    private readonly ConcurrentDictionary<string, long> _failed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _reported = new(StringComparer.Ordinal);
    private Task? _sync;
    private readonly IDisposable? _reload;
    private readonly CancellationTokenSource _stopping = new();
    private long _generation;
    private Task _move = Task.CompletedTask;

    public CollectionCatalog(ISimilaritySearch search, IStateRepository repository, CollectionBudget budget, IKernelRouting routing, IOptionsMonitor<TandemOptions> options, TimeProvider time, ILogger<CollectionCatalog> logger)
    {
        _search = search;
        _repository = repository;
        _budget = budget;
        _routing = routing;
        _time = time;
        _logger = logger;
        _reload = options.OnChange(_ => _move = MoveToServingBackendAsync());
    }

    public IReadOnlyList<CatalogEntry> Entries => [.. _entries.Values.OrderBy(e => e.Name, StringComparer.Ordinal)];

    /// <summary>Completes when collections have moved to the backend the current options choose.</summary>
    public Task Moved => _move;

    public bool TryGet(string name, out CatalogEntry entry) => _entries.TryGetValue(name, out entry!);

    /// <summary>Creates a collection, reserving its slot and bytes in the budget first (507 when full).</summary>
    public Task<CatalogEntry> CreateAsync(string name, ReadOnlyMemory<float> vectors, int dimension, long[]? ids, CancellationToken cancellationToken)
    {
        ValidateName(name);
        return CreateAsync(name, vectors, dimension, ids, _budget.Reserve(BytesOf(vectors.Length, ids)), cancellationToken);
    }

    /// <summary>
    /// Creates a collection under <paramref name="reservation"/>, which this
    /// call owns from now on: the new entry keeps it, and any failure
    /// releases it.
    /// </summary>
    public async Task<CatalogEntry> CreateAsync(string name, ReadOnlyMemory<float> vectors, int dimension, long[]? ids, CollectionBudget.Reservation reservation, CancellationToken cancellationToken)
    {
        var reserved = false;
        try
        {
            ValidateName(name);
            reservation.Resize(BytesOf(vectors.Length, ids));
            lock (_reserved)
            {
                if (_entries.ContainsKey(name) || !_reserved.Add(name))
                {
                    throw AlreadyExists(name);
                }
            }

            reserved = true;
            var entry = await BuildAsync(name, vectors, dimension, ids, reservation, cancellationToken);
            _entries[name] = entry;
            ServerLog.CollectionCreated(_logger, name, entry.Count, dimension, entry.Backend);
            return entry;
        }
        catch
        {
            reservation.Dispose();
            throw;
        }
        finally
        {
            if (reserved)
            {
                lock (_reserved)
                {
                    _reserved.Remove(name);
                }
            }
        }
    }

    /// <summary>Fails with 409 when <paramref name="name"/> is taken now (checked again when the collection is built).</summary>
    public void CheckAvailable(string name)
    {
        if (_entries.ContainsKey(name))
        {
            throw AlreadyExists(name);
        }
    }

    public bool Drop(string name)
    {
        CatalogEntry? entry;
        bool held;
        lock (_reserved)
        {
            if (!_entries.TryRemove(name, out entry))
            {
                return false;
            }

            // Held while its files go, so a repository sync does not load it
            // back (already held when its creation is just finishing).
            held = _reserved.Add(name);
        }

        try
        {
            _search.DropCollection(entry.StateName);
            entry.Budget.Dispose();
            if (entry.StoredVersion > 0)
            {
                try
                {
                    _repository.Remove(StoredPrefix + name);
                }
                catch (TandemException e) when (e.Code == TandemStatusCode.NotFound)
                {
                    // Already removed (by another replica sharing the repository).
                }
            }
        }
        finally
        {
            if (held)
            {
                lock (_reserved)
                {
                    _reserved.Remove(name);
                }
            }
        }

        ServerLog.CollectionDropped(_logger, name);
        return true;
    }

    /// <summary>
    /// Brings the catalog in line with the state repository: loads the
    /// newest version of every <c>collection.&lt;name&gt;</c> not served here
    /// (created before a restart, or by another server sharing the
    /// repository) and drops every stored collection whose files are gone
    /// (dropped by another server). A file that fails to load (damaged:
    /// DATA_LOSS) is logged once per version and skipped; the others load.
    /// Runs at startup and then every <c>Server:Collections:RepositorySyncInterval</c>.
    /// Returns how many collections it loaded.
    /// </summary>
    public async Task<int> SyncWithRepositoryAsync(CancellationToken cancellationToken)
    {
        if (!_repository.IsConfigured)
        {
            return 0;
        }

        await _syncing.WaitAsync(cancellationToken);
        try
        {
            // Entries that existed before the listing: only those can be
            // missing from it because another server dropped them.
            var known = _entries.Values.Where(e => e.StoredVersion > 0).ToList();
            var newest = new Dictionary<string, StoredStateInfo>(StringComparer.Ordinal);
            foreach (var stored in _repository.List())
            {
                if (stored.Name.StartsWith(StoredPrefix, StringComparison.Ordinal))
                {
                    newest[stored.Name] = stored;
                }
            }

            foreach (var entry in known)
            {
                if (!newest.ContainsKey(StoredPrefix + entry.Name) && _entries.TryRemove(new KeyValuePair<string, CatalogEntry>(entry.Name, entry)))
                {
                    _search.DropCollection(entry.StateName);
                    entry.Budget.Dispose();
                    ServerLog.CollectionDroppedElsewhere(_logger, entry.Name);
                }
            }

            // Forget refusals of files that are gone (bounded by what the repository holds).
            foreach (var name in _failed.Keys.Concat(_reported.Keys).Where(n => !newest.ContainsKey(StoredPrefix + n)).ToList())
            {
                _failed.TryRemove(name, out _);
                _reported.TryRemove(name, out _);
            }

            var loaded = 0;
            foreach (var stored in newest.Values)
            {
                var name = stored.Name[StoredPrefix.Length..];
                if (IsValidName(name) && _failed.GetValueOrDefault(name) != stored.Version && await TryLoadAsync(name, stored, cancellationToken))
                {
                    loaded++;
                }
            }

            return loaded;
        }
        finally
        {
            _syncing.Release();
        }
    }

    /// <summary>Loads one stored collection unless the name is served or being created or dropped here.</summary>
    private async Task<bool> TryLoadAsync(string name, StoredStateInfo stored, CancellationToken cancellationToken)
    {
        lock (_reserved)
        {
            if (_entries.ContainsKey(name) || !_reserved.Add(name))
            {
                return false;
            }
        }

        try
        {
            var reservation = _budget.Reserve(stored.SizeBytes);
            try
            {
                var entry = await LoadAsync(name, stored.Version, reservation, cancellationToken) with { CreatedAt = stored.CreatedAt };
                _entries[name] = entry;
                _failed.TryRemove(name, out _);
                _reported.TryRemove(name, out _);
                ServerLog.CollectionLoaded(_logger, name, stored.Version, entry.Count, entry.Dimension, entry.Backend);
                return true;
            }
            catch
            {
                reservation.Dispose();
                throw;
            }
        }
        catch (Exception e) when (e is TandemException or Api.HttpProblemException)
        {
            // A damaged file or a kind this build reads differently stays so
            // until the version changes: not retried. Anything else (the
            // collection budget full, workers unavailable) is retried at the
            // next sync; either is logged once per version.
            if (e is TandemException { Code: TandemStatusCode.DataLoss or TandemStatusCode.FailedPrecondition or TandemStatusCode.InvalidArgument })
            {
                _failed[name] = stored.Version;
            }

            if (_reported.GetValueOrDefault(name) != stored.Version)
            {
                _reported[name] = stored.Version;
                ServerLog.CollectionLoadFailed(_logger, name, stored.Version, e);
            }

            return false;
        }
        finally
        {
            lock (_reserved)
            {
                _reserved.Remove(name);
            }
        }
    }

    /// <summary>Re-reads the repository every <paramref name="interval"/> until disposed.</summary>
    public void StartRepositorySync(TimeSpan interval)
    {
        if (!_repository.IsConfigured || _sync is not null)
        {
            return;
        }

        _sync = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(interval, _time);
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                try
                {
                    await SyncWithRepositoryAsync(_stopping.Token);
                }
                catch (Exception e) when (e is TandemException or IOException)
                {
                    ServerLog.RepositorySyncFailed(_logger, e);
                }
            }
        });
        _ = _sync.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task<CatalogEntry> LoadAsync(string name, long version, CollectionBudget.Reservation budget, CancellationToken cancellationToken)
    {
        var stateName = $"{name}@{Interlocked.Increment(ref _generation)}";
        var info = await _search.LoadCollectionAsync(stateName, StoredPrefix + name, version, cancellationToken);
        return new CatalogEntry(name, stateName, info.Count, info.Dimension, info.Backend, info.SizeBytes, _time.GetUtcNow(), ReadOnlyMemory<float>.Empty, null, budget, info.StoredVersion);
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

    private async Task<CatalogEntry> BuildAsync(string name, ReadOnlyMemory<float> vectors, int dimension, long[]? ids, CollectionBudget.Reservation budget, CancellationToken cancellationToken)
    {
        var stateName = $"{name}@{Interlocked.Increment(ref _generation)}";
        if (!_repository.IsConfigured)
        {
            var info = await _search.CreateCollectionAsync(stateName, vectors, dimension, ids, cancellationToken);
            return new CatalogEntry(name, stateName, info.Count, info.Dimension, info.Backend, info.SizeBytes, _time.GetUtcNow(), vectors, ids, budget);
        }

        // A name held in the repository is taken, whichever replica wrote it
        // (a dropped name has no file left). Two replicas creating one name
        // at once both write version 1: the repository lets exactly one
        // publish it, the other gets ALREADY_EXISTS.
        if (_repository.List().Any(s => s.Name == StoredPrefix + name))
        {
            throw AlreadyExists(name);
        }

        try
        {
            var stored = await _search.StoreCollectionAsync(stateName, StoredPrefix + name, 1, vectors, dimension, ids, cancellationToken);
            return new CatalogEntry(name, stateName, stored.Count, stored.Dimension, stored.Backend, stored.SizeBytes, _time.GetUtcNow(), ReadOnlyMemory<float>.Empty, null, budget, stored.StoredVersion);
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.AlreadyExists)
        {
            throw AlreadyExists(name);
        }
    }

    /// <summary>What a collection is charged: 4 bytes per f32 component and 8 per id.</summary>
    public static long BytesOf(int values, long[]? ids) => ((long)values * sizeof(float)) + ((long)(ids?.Length ?? 0) * sizeof(long));

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
                    var moved = entry.StoredVersion > 0
                        ? await LoadAsync(entry.Name, entry.StoredVersion, entry.Budget, _stopping.Token)
                        : await BuildAsync(entry.Name, entry.Vectors, entry.Dimension, entry.Ids, entry.Budget, _stopping.Token);
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

    /// <summary>Checks a collection name's syntax (400 naming the rule); cheap enough to run before a body is read.</summary>
    public static void ValidateName(string name)
    {
        if (!IsValidName(name))
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, $"collection name must be 1 to {MaxNameLength} characters of letters, digits, '.', '_' or '-', got '{name}'", Kernel);
        }
    }

    private static bool IsValidName(string name) => !string.IsNullOrEmpty(name) && name.Length <= MaxNameLength && NamePattern().IsMatch(name);

    private static TandemException AlreadyExists(string name) =>
        new(TandemStatusCode.AlreadyExists, $"a collection named '{name}' already exists or is being created; drop it first or choose another name", Kernel);

    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9._-]+$")]
    private static partial System.Text.RegularExpressions.Regex NamePattern();

    public void Dispose()
    {
        _reload?.Dispose();
        _stopping.Cancel();
    }
}
