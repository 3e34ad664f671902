using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tandem.Internal.Kernels;
using Tandem.Remote.Internal.Pool;
using Tandem.Remote.Internal.Supervision;
using Tandem.Remote.Internal.Transport;

namespace Tandem.Remote.Internal;

/// <summary>
/// One <c>AddTandemRemote</c> client: its pool, and either the supervisor of
/// its dedicated workers or connections to external endpoints. Workers start
/// in the background when the client is created (a failed start is retried
/// by the next call) and stop when the service provider is disposed — with
/// DisposeAsync: stopping waits for the workers to drain, which no thread
/// should block on, so the client has no synchronous Dispose. A new
/// <see cref="RemoteOptions.WorkerPath"/> or <see cref="RemoteOptions.BuildId"/>
/// in configuration rolls every supervised worker onto it, one upgrade at a time.
/// </summary>
internal sealed class RemoteClient : IRemoteBackendSource, IWorkerPoolAdmin, IAsyncDisposable
{
    private readonly RemoteOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task? _start;
    private WorkerSupervisor? _supervisor;
    private int _disposed;
    private readonly IDisposable? _reload;
    private (string? WorkerPath, string? BuildId, string Libraries) _configured;
    private Task _configuredUpgrade = Task.CompletedTask;

    private DnsDiscovery[] _discoveries = [];
    // TLS to workers on other hosts; null when no endpoint uses it.
    private WorkerTls? _tls;

    private readonly IWorkerAddressResolver? _resolver;

    private readonly string? _stateRepository;

    public RemoteClient(IOptions<RemoteOptions> options, IOptionsMonitor<TandemOptions> tandemOptions, ILoggerFactory loggerFactory, TimeProvider? time = null, IOptionsMonitor<RemoteOptions>? reloads = null, IReadOnlyList<Tandem.Contracts.V1.KernelDescriptor>? contracts = null, IWorkerAddressResolver? resolver = null)
    {
        _resolver = resolver;
        // Topology and transport are fixed for the client's life: a snapshot.
        _options = options.Value;
        _logger = loggerFactory.CreateLogger("Tandem.Remote");
        _time = time ?? TimeProvider.System;
        Pool = new WorkerPool(() => _options, _logger, contracts);
        Backend = new RemoteKernelBackend(this, () => tandemOptions.CurrentValue);
        // Supervised workers read the client's state repository (same host).
        _stateRepository = tandemOptions.CurrentValue.StateRepository;
        // Warm up in the background from the moment Tandem is resolved, so the
        // first calls rarely wait for workers to start.
        _start = Task.Run(StartCoreAsync, CancellationToken.None);
        _ = _start.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        _configured = (_options.WorkerPath, _options.BuildId, LibraryList(_options));
        _reload = _options.Endpoints.Count == 0 ? reloads?.OnChange(OnOptionsChanged) : null;
    }

    /// <summary>The upgrade started by the latest configuration change (completed when there is none).</summary>
    internal Task ConfiguredUpgrade
    {
        get
        {
            lock (_lock)
            {
                return _configuredUpgrade;
            }
        }
    }

    private void OnOptionsChanged(RemoteOptions current)
    {
        lock (_lock)
        {
            var configured = (current.WorkerPath, current.BuildId, LibraryList(current));
            if (_disposed != 0 || configured == _configured)
            {
                return;
            }

            _configured = configured;
            // Upgrades run one after another, each to the configuration it was started for.
            _configuredUpgrade = UpgradeAfterAsync(_configuredUpgrade, RemoteOptionsValidator.ResolveWorkerPath(current), current.BuildId, [.. current.KernelLibraries]);
        }
    }

    private static string LibraryList(RemoteOptions options) => string.Join('\n', options.KernelLibraries);

    private async Task UpgradeAfterAsync(Task previous, string? workerPath, string? buildId, IReadOnlyList<string> kernelLibraries)
    {
        await previous.ConfigureAwait(false);
        try
        {
            await StartAsync(_stopping.Token).ConfigureAwait(false);
            await _supervisor!.RollingUpgradeAsync(workerPath, _stopping.Token, buildId, kernelLibraries).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or RpcException or OperationCanceledException)
        {
            RemoteLog.ConfiguredUpgradeFailed(_logger, workerPath, e.Message);
        }
    }

    public WorkerPool Pool { get; }

    public IKernelBackend Backend { get; }

    /// <summary>Directory of the supervised workers' sockets (null for external workers or before start).</summary>
    internal string? SocketDirectory => _supervisor?.SocketDirectory;

    /// <summary>The supervisor of the workers this client started (null for external workers or before start).</summary>
    internal WorkerSupervisor? Supervisor => _supervisor;

    public IReadOnlyList<WorkerInfo> Workers => [.. Pool.Workers.Select(w => w.Info)];

    public Task StartAsync(CancellationToken cancellationToken = default) => EnsureStartedAsync(null, cancellationToken).AsTask();

    /// <summary>Starts once; a failed start is retried by the next call.</summary>
    public ValueTask EnsureStartedAsync(string? kernel, CancellationToken cancellationToken)
    {
        var start = _start;
        if (start is { IsCompletedSuccessfully: true })
        {
            return ValueTask.CompletedTask;
        }

        return new ValueTask(AwaitStartAsync(kernel, cancellationToken));
    }

    private async Task AwaitStartAsync(string? kernel, CancellationToken cancellationToken)
    {
        Task start;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            if (_start is null || _start.IsFaulted || _start.IsCanceled)
            {
                _start = Task.Run(StartCoreAsync, CancellationToken.None);
            }

            start = _start;
        }

        try
        {
            await start.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException and not TandemException)
        {
            throw new TandemException(TandemStatusCode.Unavailable, $"the remote workers could not start: {e.Message}", kernel, BackendKind.Remote, innerException: e);
        }
    }

    private async Task StartCoreAsync()
    {
        if (_options.Endpoints.Count > 0)
        {
            await ConnectEndpointsAsync().ConfigureAwait(false);
            return;
        }

        var supervisor = new WorkerSupervisor(Pool, _options, RemoteOptionsValidator.ResolveWorkerPath(_options)!, _logger, _time, _stateRepository);
        try
        {
            await supervisor.StartAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch
        {
            // No worker started: the next call starts afresh.
            await supervisor.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        _supervisor = supervisor;
    }

    private async Task ConnectEndpointsAsync()
    {
        var token = WorkerTokens.Configured(_options);
        var tls = NeedsTls(_options) ? new WorkerTls(_options.Tls, _logger) : null;
        _tls = tls;
        var discoveries = _options.Endpoints.Where(e => e.StartsWith(DnsDiscovery.Scheme, StringComparison.Ordinal))
            .Select(e => new DnsDiscovery(e, Pool, () => _options, _time, token, _logger, _resolver is null ? null : _resolver.ResolveAsync, _options.Tls.Enabled ? tls : null)).ToArray();
        lock (_lock)
        {
            _discoveries = [.. _discoveries, .. discoveries];
        }

        var discovered = discoveries.Select(d => d.StartAsync(_stopping.Token)).ToArray();
        var connections = _options.Endpoints.Where(e => !e.StartsWith(DnsDiscovery.Scheme, StringComparison.Ordinal))
            .Select(e => new WorkerConnection(e, e, null, _time, () => _options, token, _logger, tls)).ToArray();
        await Task.WhenAll(discovered).ConfigureAwait(false);
        var joins = connections.Select(async c =>
        {
            await c.WaitServingAsync(_options.StartTimeout, _stopping.Token).ConfigureAwait(false);
            await Pool.JoinAsync(c, _stopping.Token).ConfigureAwait(false);
        }).ToArray();
        try
        {
            await Task.WhenAll(joins).ConfigureAwait(false);
        }
        catch when (!_stopping.IsCancellationRequested)
        {
            // Endpoints that are not serving yet keep being retried in the
            // background, even when none is: the start completes, so calls
            // fail fast with UNAVAILABLE (and fall back) instead of each
            // waiting StartTimeout again.
            foreach (var (connection, join) in connections.Zip(joins))
            {
                if (!join.IsCompletedSuccessfully)
                {
                    RemoteLog.WorkerStartFailed(_logger, connection.Name, join.Exception?.InnerException?.Message ?? "not serving");
                    Pool.JoinFailed(connection, join.Exception?.InnerException);
                    Pool.Remove(connection);
                    connection.Dispose();
                    _ = Task.Run(() => KeepJoiningAsync(connection.Address, token));
                }
            }
        }
    }

    /// <summary>Whether any endpoint is reached over TLS: an <c>https://</c> one, or a <c>dns:///</c> one with TLS enabled.</summary>
    internal static bool NeedsTls(RemoteOptions options) => options.Endpoints.Any(e =>
        e.StartsWith(WorkerChannels.TlsScheme, StringComparison.Ordinal)
        || (options.Tls.Enabled && e.StartsWith(DnsDiscovery.Scheme, StringComparison.Ordinal)));

    /// <summary>Retries an endpoint that was not serving at start until it joins or the client is disposed.</summary>
    private async Task KeepJoiningAsync(string endpoint, string? workerToken)
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            var connection = new WorkerConnection(endpoint, endpoint, null, _time, () => _options, workerToken, _logger, _tls);
            try
            {
                await Task.Delay(_options.EjectionProbeInterval, _time, token).ConfigureAwait(false);
                await connection.WaitServingAsync(_options.StartTimeout, token).ConfigureAwait(false);
                await Pool.JoinAsync(connection, token).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is RpcException or TimeoutException or InvalidOperationException or OperationCanceledException)
            {
                Pool.JoinFailed(connection, e);
                Pool.Remove(connection);
                connection.Dispose();
            }
        }
    }

    public async Task RestartAsync(string name, CancellationToken cancellationToken = default)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        await (_supervisor ?? throw ExternalWorkers()).RestartAsync(name, cancellationToken).ConfigureAwait(false);
    }

    public async Task RollingUpgradeAsync(string? workerPath = null, CancellationToken cancellationToken = default)
    {
        await StartAsync(cancellationToken).ConfigureAwait(false);
        await (_supervisor ?? throw ExternalWorkers()).RollingUpgradeAsync(workerPath, cancellationToken).ConfigureAwait(false);
    }

    private static InvalidOperationException ExternalWorkers() => new("the workers are managed elsewhere (RemoteOptions.Endpoints); restart or upgrade them there");

    public async ValueTask DisposeAsync()
    {
        Task? start;
        lock (_lock)
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            start = _start;
        }

        _reload?.Dispose();
        _stopping.Cancel();
        await ConfiguredUpgrade.ConfigureAwait(false);
        if (start is not null)
        {
            await start.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        }

        if (_supervisor is not null)
        {
            await _supervisor.DisposeAsync().ConfigureAwait(false);
        }

        DnsDiscovery[] discoveries;
        lock (_lock)
        {
            discoveries = _discoveries;
        }

        foreach (var discovery in discoveries)
        {
            await discovery.DisposeAsync().ConfigureAwait(false);
        }

        await Pool.DisposeAsync().ConfigureAwait(false);
    }
}
