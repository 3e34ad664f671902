using Grpc.Core;
using Microsoft.Extensions.Logging;
using Tandem.Contracts.V1;
using Tandem.Remote.Internal.Pool;

namespace Tandem.Remote.Internal.Supervision;

/// <summary>
/// Runs this client's dedicated workers (shared-nothing topology): starts one
/// process per slot on its own socket, admits it to the pool once it serves
/// and holds every state, restarts crashed workers with exponential backoff,
/// replaces workers one at a time (restart, rolling upgrade) without failing
/// calls, and stops them all gracefully on dispose.
/// </summary>
internal sealed class WorkerSupervisor : IAsyncDisposable
{
    private readonly WorkerPool _pool;
    private readonly RemoteOptions _options;
    private readonly string? _stateRepository;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Slot[] _slots;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _replacing = new(1, 1);
    private readonly bool _ownsSocketDirectory;
    private string _binary;
    private string? _buildId;
    private IReadOnlyList<string> _libraries;
    private int _upgrades;
    // Sent to the workers through their environment and on every call; never logged.
    private readonly string? _token;

    public WorkerSupervisor(WorkerPool pool, RemoteOptions options, string binary, ILogger logger, TimeProvider time, string? stateRepository = null)
    {
        _stateRepository = stateRepository;
        _pool = pool;
        _options = options;
        _logger = logger;
        _time = time;
        _binary = binary;
        _buildId = options.BuildId;
        _libraries = [.. options.KernelLibraries];
        _token = Transport.WorkerTokens.ForSupervised(options);
        _slots = [.. Enumerable.Range(0, options.WorkerCount).Select(i => new Slot($"w{i}"))];
        if (options.SocketDirectory is { } directory)
        {
            SocketDirectory = directory;
            Directory.CreateDirectory(directory);
        }
        else
        {
            SocketDirectory = Directory.CreateTempSubdirectory("tandem-workers-").FullName;
            _ownsSocketDirectory = true;
        }
    }

    public string SocketDirectory { get; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var starts = _slots.Select(slot => LaunchAsync(slot, _binary, _buildId, _libraries, cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(starts).ConfigureAwait(false);
        }
        catch when (starts.Any(s => s.IsCompletedSuccessfully))
        {
            // Serve with the workers that started; the others keep retrying.
            foreach (var (slot, start) in _slots.Zip(starts))
            {
                if (!start.IsCompletedSuccessfully)
                {
                    ScheduleRestart(slot);
                }
            }
        }
    }

    public Task RestartAsync(string name, CancellationToken cancellationToken)
    {
        var slot = _slots.FirstOrDefault(s => s.Name == name) ?? throw new InvalidOperationException($"no worker named '{name}'");
        return ReplaceAsync(slot, _binary, _buildId, _libraries, cancellationToken);
    }

    /// <param name="binary">The new binary; null keeps the current one.</param>
    /// <param name="cancellationToken">Stops the upgrade between workers.</param>
    /// <param name="buildId">The successors' build id; null derives a new one from the configured id.</param>
    /// <param name="kernelLibraries">The successors' kernel libraries; null keeps the current set.</param>
    public async Task RollingUpgradeAsync(string? binary, CancellationToken cancellationToken, string? buildId = null, IReadOnlyList<string>? kernelLibraries = null)
    {
        var libraries = kernelLibraries ?? _libraries;
        var target = binary ?? _binary;
        if (!File.Exists(target))
        {
            throw new InvalidOperationException($"worker binary '{target}' does not exist");
        }

        buildId ??= $"{_options.BuildId ?? "build"}.u{Interlocked.Increment(ref _upgrades)}";
        foreach (var slot in _slots)
        {
            await ReplaceAsync(slot, target, buildId, libraries, cancellationToken).ConfigureAwait(false);
        }

        _binary = target;
        _buildId = buildId;
        _libraries = libraries;
        RemoteLog.UpgradeFinished(_logger, target, buildId);
    }

    /// <summary>Starts the successor, lets it join (states replayed), then retires the old worker.</summary>
    private async Task ReplaceAsync(Slot slot, string binary, string? buildId, IReadOnlyList<string> libraries, CancellationToken cancellationToken)
    {
        await _replacing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var old = slot.Current;
            await LaunchAsync(slot, binary, buildId, libraries, cancellationToken).ConfigureAwait(false);
            if (old is not null)
            {
                await RetireAsync(old).ConfigureAwait(false);
            }
        }
        finally
        {
            _replacing.Release();
        }
    }

    private async Task LaunchAsync(Slot slot, string binary, string? buildId, IReadOnlyList<string> libraries, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var process = WorkerProcess.Start(binary, _options, SocketDirectory, slot.Name, buildId, libraries, logger: _logger, token: _token, stateRepository: _stateRepository);
        WorkerConnection? worker = null;
        try
        {
            var address = await process.WaitListeningAsync(_options.StartTimeout, linked.Token).ConfigureAwait(false);
            worker = new WorkerConnection(slot.Name, address, process, _time, () => _options, _token, _logger);
            await worker.WaitServingAsync(_options.StartTimeout, linked.Token).ConfigureAwait(false);
            await _pool.JoinAsync(worker, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            RemoteLog.WorkerStartFailed(_logger, slot.Name, e.Message);
            if (worker is not null)
            {
                worker.Retiring = true;
                _pool.Remove(worker);
                worker.Dispose();
            }

            process.Dispose();
            throw;
        }

        slot.Current = worker;
        _ = process.Exited.ContinueWith(_ => OnExited(slot, worker), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void OnExited(Slot slot, WorkerConnection worker)
    {
        if (worker.Retiring || _stop.IsCancellationRequested)
        {
            return;
        }

        _pool.Remove(worker);
        ScheduleRestart(slot, worker.Process!, worker);
        // Calls still on the dead worker's channel fail as UNAVAILABLE (and go
        // elsewhere) rather than CANCELLED by a disposed channel.
        _ = worker.WaitIdleAsync(_options.DrainGrace).ContinueWith(_ => worker.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void ScheduleRestart(Slot slot, WorkerProcess? crashed = null, WorkerConnection? replaced = null)
    {
        var crashes = Interlocked.Increment(ref slot.Crashes);
        var delay = TimeSpan.FromTicks(Math.Min(_options.MaxRestartBackoff.Ticks, _options.RestartBackoff.Ticks * (1L << Math.Min(crashes - 1, 20))));
        if (crashed is not null)
        {
            RemoteLog.WorkerCrashed(_logger, slot.Name, crashed.Id, crashed.ExitCode, delay);
            crashed.Dispose();
        }

        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(delay, _time, _stop.Token).ConfigureAwait(false);
                await _replacing.WaitAsync(_stop.Token).ConfigureAwait(false);
                try
                {
                    // Replaced meanwhile (restart or upgrade): nothing to do.
                    if (slot.Current is { Retiring: false } current && current != replaced)
                    {
                        return;
                    }

                    await LaunchAsync(slot, _binary, _buildId, _libraries, _stop.Token).ConfigureAwait(false);
                    Volatile.Write(ref slot.Crashes, 0);
                }
                finally
                {
                    _replacing.Release();
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            catch (Exception)
            {
                if (!_stop.IsCancellationRequested)
                {
                    ScheduleRestart(slot, replaced: replaced);
                }
            }
        });
    }

    /// <summary>Out of routing, in-flight calls finished, drained, exited (killed after the grace period).</summary>
    private async Task RetireAsync(WorkerConnection worker)
    {
        worker.Retiring = true;
        _pool.Remove(worker);
        await worker.WaitIdleAsync(_options.DrainGrace).ConfigureAwait(false);
        try
        {
            await worker.Client.DrainAsync(new DrainRequest(), deadline: DateTime.UtcNow.AddSeconds(5)).ConfigureAwait(false);
        }
        catch (RpcException)
        {
            // Unreachable: SIGTERM below does the same.
            await worker.Process!.StopAsync(_options.DrainGrace).ConfigureAwait(false);
        }

        await worker.Process!.WaitOrKillAsync(_options.DrainGrace + TimeSpan.FromSeconds(1)).ConfigureAwait(false);
        RemoteLog.WorkerRetired(_logger, worker.Name, worker.InstanceId);
        worker.Dispose();
        worker.Process.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _replacing.WaitAsync().ConfigureAwait(false);
        var stops = new List<Task>();
        foreach (var worker in _pool.Workers)
        {
            worker.Retiring = true;
            _pool.Remove(worker);
            stops.Add(StopAsync(worker));
        }

        await Task.WhenAll(stops).ConfigureAwait(false);
        if (_ownsSocketDirectory)
        {
            try
            {
                Directory.Delete(SocketDirectory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private async Task StopAsync(WorkerConnection worker)
    {
        if (worker.Process is { } process)
        {
            await process.StopAsync(_options.DrainGrace).ConfigureAwait(false);
            process.Dispose();
        }

        worker.Dispose();
    }

    private sealed class Slot(string name)
    {
        public string Name { get; } = name;

        public WorkerConnection? Current { get; set; }

        public int Crashes;
    }
}
