using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Remote.Internal.SharedMemory;

namespace Tandem.Remote.Internal.Pool;

/// <summary>
/// The workers calls are routed to: least outstanding requests between two
/// random choices among the routable ones. It also keeps what every worker
/// must hold — the live states, replayed into a worker before it joins — and
/// registers shared-memory regions with a worker on first use. Nothing it
/// does blocks its caller: drops and unregistrations run in the background,
/// and disposal waits for them (boundedly) without holding a thread.
/// </summary>
internal sealed class WorkerPool : IAsyncDisposable
{
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, RemoteState> _states = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private WorkerConnection[] _workers = [];
    private TaskCompletionSource? _changed;
    private volatile Dictionary<string, TandemException>? _refusals;
    private static readonly TimeSpan BackgroundGrace = TimeSpan.FromSeconds(2);
    private readonly ConcurrentDictionary<Task, byte> _drops = new();
    private readonly ConcurrentDictionary<Task, byte> _unregisters = new();
    // Why the last worker that failed to join refused this client (its token), until one joins.
    private volatile string? _unauthenticated;
    // The last refused TLS handshake, named in UNAVAILABLE until a worker joins.
    private volatile string? _tlsRefused;

    /// <param name="contracts">The kernels the host expects the workers to serve, checked by hash (null: the reference kernels).</param>
    private readonly IReadOnlyList<KernelDescriptor> _contracts;

    public WorkerPool(Func<RemoteOptions> options, ILogger logger, IReadOnlyList<KernelDescriptor>? contracts = null)
    {
        Options = options;
        _logger = logger;
        _contracts = contracts ?? KernelContracts.All;
        var current = options();
        SharedMemory = new SharedMemoryPool(current.SharedMemoryDirectory, $"tandem-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}-", current.SharedMemoryPoolSize, UnregisterAndDelete);
    }

    public Func<RemoteOptions> Options { get; }

    public SharedMemoryPool SharedMemory { get; }

    public IReadOnlyList<WorkerConnection> Workers => Volatile.Read(ref _workers);

    /// <summary>Live states, which every joining worker gets (for logs and tests).</summary>
    public int StateCount => _states.Count;

    /// <summary>The states the pool replicates now (for tests and diagnostics).</summary>
    internal IReadOnlyCollection<RemoteState> States => (IReadOnlyCollection<RemoteState>)_states.Values;

    /// <summary>
    /// A routable worker that holds <paramref name="stateId"/> (when not empty)
    /// and is not in <paramref name="exclude"/>, its call already counted; null when none.
    /// </summary>
    public WorkerConnection? Pick(string stateId, List<WorkerConnection>? exclude)
    {
        var workers = Volatile.Read(ref _workers);
        for (var attempt = 0; attempt < 4; attempt++)
        {
            WorkerConnection? first = null;
            WorkerConnection? second = null;
            var eligible = 0;
            // Reservoir sampling of two candidates in one pass, no allocation.
            foreach (var worker in workers)
            {
                if (!worker.Routable || (stateId.Length > 0 && !worker.States.ContainsKey(stateId)) || (exclude?.Contains(worker) ?? false))
                {
                    continue;
                }

                eligible++;
                if (eligible == 1)
                {
                    first = worker;
                }
                else if (eligible == 2)
                {
                    second = worker;
                }
                else if (Random.Shared.Next(eligible) < 2)
                {
                    if (Random.Shared.Next(2) == 0)
                    {
                        first = worker;
                    }
                    else
                    {
                        second = worker;
                    }
                }
            }

            if (first is null)
            {
                return null;
            }

            // Random order first, so ties (an idle pool) spread instead of all going to one worker.
            if (second is not null && Random.Shared.Next(2) == 0)
            {
                (first, second) = (second, first);
            }

            var chosen = second is null || first.InFlight <= second.InFlight ? first : second;
            if (chosen.TryEnter())
            {
                return chosen;
            }
        }

        return null;
    }

    /// <summary>Adds a serving worker: replays every live state into it, then puts it in routing.</summary>
    public async Task JoinAsync(WorkerConnection worker, CancellationToken cancellationToken)
    {
        // Before the worker is routable: every call to it is built for what it can read.
        await ProbeSharedMemoryAsync(worker, cancellationToken).ConfigureAwait(false);
        worker.Changed = NotifyChanged;
        lock (_lock)
        {
            _workers = [.. _workers, worker];
        }

        NotifyChanged();

        // States created from now on reach this worker through CreateEverywhere;
        // earlier ones are replayed here (ALREADY_EXISTS counts as held).
        CheckContracts(worker);
        await ReplayAsync(worker, cancellationToken).ConfigureAwait(false);
        worker.Restarted = ReplayAsync;
        worker.Joined = true;
        _unauthenticated = null;
        _tlsRefused = null;
        RemoteLog.WorkerJoined(_logger, worker.Name, worker.Address, worker.Version, worker.InstanceId, _states.Count);
    }

    /// <summary>A worker's --max-message-bytes when the options do not say (the worker's default, 64 MiB).</summary>
    private const long DefaultWorkerMaxMessageBytes = 64L << 20;

    /// <summary>
    /// Whether <paramref name="worker"/> reads this client's shared memory:
    /// detected, not configured, by registering one of this client's regions
    /// with it. A worker on another host (or in a container with its own
    /// /dev/shm, or as another user, or with another --shm-dir) cannot open
    /// the file and refuses it; its calls and states then carry their
    /// tensors inline. A transport failure fails the join (it is retried).
    /// </summary>
    private async Task ProbeSharedMemoryAsync(WorkerConnection worker, CancellationToken cancellationToken)
    {
        // A one-byte file of its own, deleted (and unregistered) right after.
        var probe = SharedMemory.CreateDedicated(1);
        try
        {
            await RegisterAsync(worker, probe, cancellationToken).ConfigureAwait(false);
            worker.SharesMemory = true;
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.PermissionDenied or StatusCode.InvalidArgument or StatusCode.FailedPrecondition)
        {
            worker.SharesMemory = false;
            RemoteLog.NoSharedMemory(_logger, worker.Name, SharedMemory.Directory, e.Status.Detail);
        }
        finally
        {
            SharedMemory.Discard(probe);
        }
    }

    /// <summary>
    /// Remembers a worker that refused this client's token, so calls say so
    /// instead of UNAVAILABLE, and a TLS handshake that failed, so UNAVAILABLE
    /// says why (an untrusted or expired certificate, a plaintext worker).
    /// </summary>
    public void JoinFailed(WorkerConnection worker, Exception? failure)
    {
        if (Transport.WorkerTls.RefusalIn(failure) is { } handshake)
        {
            _tlsRefused = handshake;
            return;
        }

        // A TimeoutException from WaitServingAsync carries the last refusal as its inner exception.
        for (var e = failure; e is not null; e = e is RpcException rpc ? rpc.Status.DebugException ?? rpc.InnerException : e.InnerException)
        {
            if (e is RpcException { StatusCode: StatusCode.Unauthenticated } refused)
            {
                _unauthenticated = $"worker {worker.Name} refused this client: {refused.Status.Detail}";
                return;
            }
        }
    }

    /// <summary>
    /// The failure of a call no worker can take: UNAUTHENTICATED when the
    /// workers refused this client's token (not retried, the message says
    /// which option to set), else UNAVAILABLE with <paramref name="message"/>.
    /// </summary>
    public TandemException NoWorkerServing(string? kernel, string message) =>
        _unauthenticated is { } why
            ? new TandemException(TandemStatusCode.Unauthenticated, why, kernel, BackendKind.Remote)
            : RemoteErrors.Unavailable(kernel, _tlsRefused is { } tls ? $"{message}; {tls}" : message);

    /// <summary>Creates on <paramref name="worker"/> every live state it does not hold.</summary>
    public async Task ReplayAsync(WorkerConnection worker, CancellationToken cancellationToken)
    {
        foreach (var state in _states.Values)
        {
            if (!worker.States.ContainsKey(state.Id))
            {
                await CreateStateOnAsync(worker, state, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Why the workers cannot serve <paramref name="kernel"/> for this build, or null (also before the first worker joined).</summary>
    public TandemException? Refusal(string kernel) =>
        _refusals is { } refusals && refusals.TryGetValue(kernel, out var refusal) ? refusal : null;

    /// <summary>Compares the first worker's ABI and descriptors with this build's, once.</summary>
    /// <summary>The contract the workers are checked against for <paramref name="kernel"/>, or null when the host knows none.</summary>
    public KernelDescriptor? Contract(string kernel) => _contracts.FirstOrDefault(c => c.Name == kernel);

    private void CheckContracts(WorkerConnection worker)
    {
        if (_refusals is not null || worker.Description is not { } description)
        {
            return;
        }

        var refusals = new Dictionary<string, TandemException>(StringComparer.Ordinal);
        var major = description.AbiVersion >> 16;
        foreach (var expected in _contracts)
        {
            var difference = major != KernelContracts.AbiMajor
                ? $"the workers speak ABI {major}.{description.AbiVersion & 0xFFFF} but this build needs major {KernelContracts.AbiMajor}"
                : KernelContracts.Difference(expected, description.KernelSet?.Kernels.FirstOrDefault(k => k.Name == expected.Name));
            if (difference is not null)
            {
                refusals[expected.Name] = new TandemException(TandemStatusCode.FailedPrecondition, $"the remote workers cannot serve '{expected.Name}': {difference}", expected.Name, BackendKind.Remote);
                RemoteLog.KernelRefused(_logger, expected.Name, difference);
            }
        }

        _refusals = refusals;
    }

    public void Remove(WorkerConnection worker)
    {
        worker.Retiring = true;
        lock (_lock)
        {
            _workers = [.. _workers.Where(w => w != worker)];
        }

        NotifyChanged();
    }

    /// <summary>
    /// Completes at the next change of membership or of a worker's status,
    /// instance or calls in flight (for an admin view, and for tests that wait
    /// on the pool). Take it before reading the state it guards, so a change in
    /// between is not missed.
    /// </summary>
    public Task NextChange
    {
        get
        {
            var next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return (Interlocked.CompareExchange(ref _changed, next, null) ?? next).Task;
        }
    }

    // On the call path: one volatile read while nobody waits.
    private void NotifyChanged()
    {
        if (Volatile.Read(ref _changed) is not null)
        {
            Interlocked.Exchange(ref _changed, null)?.TrySetResult();
        }
    }

    /// <summary>Makes <paramref name="region"/> known to <paramref name="worker"/> once.</summary>
    public Task EnsureRegisteredAsync(WorkerConnection worker, MappedRegion region, CancellationToken cancellationToken)
    {
        if (worker.Regions.TryGetValue(region.Name, out var registered) && !registered.IsFaulted && !registered.IsCanceled)
        {
            return registered;
        }

        var task = worker.Regions.AddOrUpdate(
            region.Name,
            _ => RegisterAsync(worker, region, cancellationToken),
            (_, existing) => existing.IsFaulted || existing.IsCanceled ? RegisterAsync(worker, region, cancellationToken) : existing);
        return task;
    }

    private static async Task RegisterAsync(WorkerConnection worker, MappedRegion region, CancellationToken cancellationToken)
    {
        lock (region.RegisteredWith)
        {
            region.RegisteredWith.Add(worker);
        }

        try
        {
            await worker.Client.RegisterSharedMemoryAsync(
                new RegisterSharedMemoryRequest { Name = region.Name, Path = region.Path, Size = (ulong)region.Size },
                deadline: DateTime.UtcNow.AddSeconds(10),
                cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
        }
    }

    /// <summary>Registers the state so joining workers replay it, then creates it on every current worker.</summary>
    public async Task CreateEverywhereAsync(RemoteState state, CancellationToken cancellationToken)
    {
        _states[state.Id] = state;
        var workers = Volatile.Read(ref _workers);
        var tasks = new List<Task>(workers.Length);
        foreach (var worker in workers)
        {
            // An ejected worker gets it when its probe re-admits it.
            if (!worker.Retiring && !worker.Ejected)
            {
                tasks.Add(CreateStateOnAsync(worker, state, cancellationToken));
            }
        }

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is RpcException or OperationCanceledException)
        {
            // The caller gave up: it drops the state, wherever it got to.
            throw new OperationCanceledException("creating the state was cancelled by the caller", e, cancellationToken);
        }
        catch (RpcException) when (workers.Any(w => w.States.ContainsKey(state.Id)))
        {
            // Held by some workers; calls route to those, the others get it when they rejoin.
        }
        catch (RpcException e)
        {
            _states.TryRemove(state.Id, out _);
            throw RemoteErrors.From(e, null, "pool");
        }
    }

    private async Task CreateStateOnAsync(WorkerConnection worker, RemoteState state, CancellationToken cancellationToken)
    {
        var request = state.Request;
        if (state.Region is { } region)
        {
            if (worker.SharesMemory)
            {
                await EnsureRegisteredAsync(worker, region, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // A worker that cannot read the region gets the tensors in the message.
                request = state.InlineRequest(Options().WorkerMaxMessageBytes ?? DefaultWorkerMaxMessageBytes, worker.Name);
            }
        }

        try
        {
            // Bounded, so a stopped worker cannot hold up creating a collection;
            // it gets the state when it is re-admitted.
            await worker.Client.CreateStateAsync(request, deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
        }

        // Dropped meanwhile: undo, so the worker does not keep it.
        if (!_states.ContainsKey(state.Id))
        {
            await DropOnAsync(worker, state.Id).ConfigureAwait(false);
            return;
        }

        worker.States[state.Id] = 0;
    }

    /// <summary>
    /// Forgets the state at once — no call routes to it and no worker gets it
    /// on replay — then drops it on every worker and deletes its region in
    /// the background (best effort: a worker that misses the drop loses the
    /// state on restart), so a stopped worker never holds up the caller.
    /// </summary>
    public void DropEverywhere(RemoteState state)
    {
        if (!_states.TryRemove(state.Id, out _))
        {
            Release(state);
            return;
        }

        var workers = Volatile.Read(ref _workers);
        foreach (var worker in workers)
        {
            worker.States.TryRemove(state.Id, out _);
        }

        Track(_drops, DropAndReleaseAsync(workers, state));
    }

    private async Task DropAndReleaseAsync(WorkerConnection[] workers, RemoteState state)
    {
        var drops = new Task[workers.Length];
        for (var i = 0; i < workers.Length; i++)
        {
            drops[i] = DropOnAsync(workers[i], state.Id);
        }

        await Task.WhenAll(drops).ConfigureAwait(false);
        // Only after the drops: no worker is told to forget a region a state it holds still reads.
        Release(state);
    }

    private void Release(RemoteState state)
    {
        if (state.Region is { } region)
        {
            SharedMemory.Discard(region);
        }
    }

    /// <summary>Keeps <paramref name="work"/> in <paramref name="pending"/> until it completes, for disposal to wait on.</summary>
    private static void Track(ConcurrentDictionary<Task, byte> pending, Task work)
    {
        pending[work] = 0;
        _ = work.ContinueWith(t => pending.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private static async Task DropOnAsync(WorkerConnection worker, string id)
    {
        try
        {
            await worker.Client.DropStateAsync(new DropStateRequest { StateId = id }, deadline: DateTime.UtcNow.AddSeconds(2)).ConfigureAwait(false);
        }
        catch (RpcException)
        {
            // Gone or stopped: it holds nothing after a restart anyway.
        }
    }

    /// <summary>Unregisters a discarded region from the workers that know it, then deletes its file.</summary>
    public void UnregisterAndDelete(MappedRegion region)
    {
        WorkerConnection[] holders;
        lock (region.RegisteredWith)
        {
            holders = [.. region.RegisteredWith.OfType<WorkerConnection>()];
        }

        foreach (var worker in holders)
        {
            if (worker.Regions.TryRemove(region.Name, out _) && !worker.Retiring)
            {
                // Not awaited: a stopped worker must not hold up the caller. A
                // worker still mapping the file keeps its memory after the unlink.
                Track(_unregisters, UnregisterAsync(worker, region.Name));
            }
        }

        region.Dispose();
    }

    private static async Task UnregisterAsync(WorkerConnection worker, string name)
    {
        try
        {
            await worker.Client.UnregisterSharedMemoryAsync(new UnregisterSharedMemoryRequest { Name = name }, deadline: DateTime.UtcNow.AddSeconds(2)).ConfigureAwait(false);
        }
        catch (RpcException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        // States, then regions, while external workers can still be told to
        // forget them; a worker that does not answer in time is not waited for.
        await WhenAllWithin(_drops).ConfigureAwait(false);
        SharedMemory.Dispose();
        await WhenAllWithin(_unregisters).ConfigureAwait(false);
        WorkerConnection[] workers;
        lock (_lock)
        {
            workers = _workers;
            _workers = [];
        }

        foreach (var worker in workers)
        {
            worker.Dispose();
        }
    }

    private static async Task WhenAllWithin(ConcurrentDictionary<Task, byte> pending)
    {
        try
        {
            await Task.WhenAll(pending.Keys).WaitAsync(BackgroundGrace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }
}
