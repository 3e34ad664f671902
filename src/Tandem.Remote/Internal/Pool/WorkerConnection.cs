using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Contracts.V1;
using Tandem.Remote.Internal.Supervision;
using Tandem.Remote.Internal.Transport;
using Tandem.Remote.Internal.Transport.FastPath;

namespace Tandem.Remote.Internal.Pool;

/// <summary>
/// One worker as the pool sees it: its channel, readiness (kept current by a
/// reconnecting Health.Watch), routing counters, ejection after consecutive
/// failures with re-admission by probe, and what it holds (states,
/// registered shared-memory regions). Kernel calls go over the worker's fast
/// path when it offers one on this host (<see cref="RemoteOptions.FastPath"/>),
/// everything else over the channel.
/// </summary>
internal sealed class WorkerConnection : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _time;
    private readonly Func<RemoteOptions> _options;
    private int _inFlight;
    private long _completed;
    private long _failed;
    private int _consecutiveFailures;
    private int _ejected;
    private int _retiring;
    private volatile bool _joined;
    private volatile HealthCheckResponse.Types.ServingStatus _health = HealthCheckResponse.Types.ServingStatus.Unknown;
    private string? _instanceId;
    // Completed by the call that leaves a retiring worker idle.
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _identity = new(1, 1);
    // Null when the fast path is off or the worker is not on a Unix socket.
    private readonly FastPathLink? _fastPath;
    private long _fastCalls;

    public WorkerConnection(string name, string address, WorkerProcess? process, TimeProvider time, Func<RemoteOptions> options, string? token = null, ILogger? logger = null, WorkerTls? tls = null, string? serverName = null)
    {
        Name = name;
        Address = address;
        Process = process;
        _time = time;
        _options = options;
        _channel = WorkerChannels.Create(address, token, tls, serverName);
        Client = new Accelerator.AcceleratorClient(_channel);
        Health = new Health.HealthClient(_channel);
        if (options().FastPath == RemoteFastPath.Auto && address.StartsWith(WorkerChannels.UnixScheme, StringComparison.Ordinal))
        {
            _fastPath = new FastPathLink(name, token, logger ?? NullLogger.Instance, time);
        }
    }

    /// <summary>Whether kernel calls go over the fast path now.</summary>
    public bool UsesFastPath => _fastPath?.Current is not null;

    /// <summary>Kernel calls sent over the fast path so far (for tests and benchmarks).</summary>
    public long FastPathCalls => Interlocked.Read(ref _fastCalls);

    /// <summary>The fast path's open connection, or null (benchmarks call it bare).</summary>
    internal FastPathConnection? FastPath => _fastPath?.Current;

    /// <summary>Completes once the fast path is connected; never when the worker offers none (tests and benchmarks bound the wait).</summary>
    internal Task WhenFastPathConnected() => _fastPath?.WhenConnected() ?? new TaskCompletionSource().Task;

    /// <summary>Closes the fast path's connection as a broken socket would (tests).</summary>
    internal void CloseFastPath(string reason) => _fastPath?.CloseCurrent(reason);

    /// <summary>
    /// A kernel call: over the fast path when it is connected, else over gRPC.
    /// Either way a failure is an <see cref="RpcException"/> with the worker's code.
    /// </summary>
    public Task<InvokeReply> InvokeAsync(InvokeRequest request, DateTime? deadline, CancellationToken cancellationToken)
    {
        if (_fastPath?.Current is { } fast)
        {
            Interlocked.Increment(ref _fastCalls);
            return fast.CallAsync(FastPathFrames.MethodInvoke, request, InvokeReply.Parser, deadline, cancellationToken);
        }

        return Client.InvokeAsync(request, Internal.RemoteKernelBackend.Headers(), deadline, cancellationToken).ResponseAsync;
    }

    /// <summary>Connects the fast path the worker's Describe offers (or stops using one it no longer offers).</summary>
    private Task UseFastPathAsync(DescribeReply describe, CancellationToken cancellationToken) =>
        _fastPath is null
            ? Task.CompletedTask
            : _fastPath.UseAsync(Address[WorkerChannels.UnixScheme.Length..], describe.FastPathSocket, describe.FastPathVersion, cancellationToken);

    public string Name { get; }

    public string Address { get; }

    public WorkerProcess? Process { get; }

    public Accelerator.AcceleratorClient Client { get; }

    public Health.HealthClient Health { get; }

    public string? Version { get; private set; }

    public string? InstanceId
    {
        get => Volatile.Read(ref _instanceId);
        private set
        {
            Volatile.Write(ref _instanceId, value);
            Changed?.Invoke();
        }
    }

    /// <summary>Called on every change of <see cref="Status"/>, <see cref="InstanceId"/> or <see cref="InFlight"/> (set by the pool it joins).</summary>
    public Action? Changed { get; set; }

    /// <summary>What the worker said it serves when it started.</summary>
    public DescribeReply? Description { get; private set; }

    /// <summary>
    /// Restores what the worker must hold (states) when the process behind
    /// this address turned out to be a new one — an external worker restarted
    /// in place. It leaves routing until this completes.
    /// </summary>
    public Func<WorkerConnection, CancellationToken, Task>? Restarted { get; set; }

    /// <summary>In routing: set once it serves and holds every state.</summary>
    public bool Joined
    {
        get => _joined;
        set
        {
            _joined = value;
            Changed?.Invoke();
        }
    }

    /// <summary>Leaving routing (restart, upgrade, dispose); never undone.</summary>
    public bool Retiring
    {
        get => Volatile.Read(ref _retiring) != 0;
        set
        {
            // A full fence: a call that leaves afterwards sees it and signals idleness.
            Interlocked.Exchange(ref _retiring, value ? 1 : 0);
            Changed?.Invoke();
        }
    }

    public bool Ejected => Volatile.Read(ref _ejected) != 0;

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>States created on this worker, by id.</summary>
    public ConcurrentDictionary<string, byte> States { get; } = new(StringComparer.Ordinal);

    /// <summary>Shared-memory regions registered with this worker, by name.</summary>
    public ConcurrentDictionary<string, Task> Regions { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether the worker reads this client's shared-memory regions (probed when it joins); when not, tensors travel inline.</summary>
    public bool SharesMemory { get; set; }

    public bool Routable => Joined && !Retiring && !Ejected && _health == HealthCheckResponse.Types.ServingStatus.Serving;

    public WorkerStatus Status =>
        Retiring ? WorkerStatus.Retiring
        : Ejected ? WorkerStatus.Ejected
        : !Joined ? WorkerStatus.Starting
        : _health == HealthCheckResponse.Types.ServingStatus.Serving ? WorkerStatus.Serving
        : WorkerStatus.NotServing;

    public WorkerInfo Info => new(Name, Address, Status, InFlight, Interlocked.Read(ref _completed), Interlocked.Read(ref _failed), Version, InstanceId, Process?.Id);

    /// <summary>Polls readiness until SERVING (bounded), then reads the worker's identity and starts watching its health.</summary>
    /// <summary>A failed call's message: a refused TLS handshake's reason rather than grpc's wrapper.</summary>
    private static string Detail(RpcException e) => WorkerTls.RefusalIn(e) ?? e.Status.Detail;

    public async Task WaitServingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        deadline.CancelAfter(timeout);
        // The last refusal, named in the timeout (a TLS handshake's reason, a refused token).
        RpcException? last = null;
        TimeoutException NotServing() => new(
            last is null ? $"worker {Name} did not report SERVING within {timeout}" : $"worker {Name} did not report SERVING within {timeout}; last: {Detail(last)}",
            last);
        while (true)
        {
            if (Process is { HasExited: true })
            {
                throw new InvalidOperationException($"worker {Name} exited with code {Process.ExitCode} while starting");
            }

            try
            {
                var reply = await Health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: deadline.Token).ConfigureAwait(false);
                if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    break;
                }
            }
            catch (RpcException e) when (!deadline.IsCancellationRequested)
            {
                // Not listening yet: retry below.
                last = e;
            }
            catch (RpcException) when (!cancellationToken.IsCancellationRequested)
            {
                throw NotServing();
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw NotServing();
            }
        }

        var describe = await Client.DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken).ConfigureAwait(false);
        Description = describe;
        Version = describe.WorkerVersion;
        InstanceId = describe.InstanceId;
        await UseFastPathAsync(describe, cancellationToken).ConfigureAwait(false);
        SetHealth(HealthCheckResponse.Types.ServingStatus.Serving);
        _ = Task.Run(WatchHealthAsync);
    }

    /// <summary>Counts a call on this worker; false when it left routing meanwhile (the count is undone).</summary>
    public bool TryEnter()
    {
        Interlocked.Increment(ref _inFlight);
        if (Retiring)
        {
            Leave();
            return false;
        }

        Changed?.Invoke();
        return true;
    }

    public void Succeeded()
    {
        Leave();
        Interlocked.Increment(ref _completed);
        Volatile.Write(ref _consecutiveFailures, 0);
    }

    public void Failed(TandemStatusCode code)
    {
        Leave();
        Interlocked.Increment(ref _failed);
        if (!TandemStatusCodes.CountsAgainstWorker(code))
        {
            return;
        }

        if (Interlocked.Increment(ref _consecutiveFailures) >= _options().EjectionConsecutiveFailures
            && Interlocked.CompareExchange(ref _ejected, 1, 0) == 0)
        {
            Changed?.Invoke();
            _ = Task.Run(ProbeUntilServingAsync);
        }
    }

    private void Leave()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && Retiring)
        {
            _idle.TrySetResult();
        }

        Changed?.Invoke();
    }

    /// <summary>Waits until no call is in flight (bounded), for a worker that left routing (<see cref="Retiring"/> set first).</summary>
    public async Task WaitIdleAsync(TimeSpan timeout)
    {
        if (InFlight == 0)
        {
            return;
        }

        try
        {
            await _idle.Task.WaitAsync(timeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The grace period is over: the caller drains the worker regardless.
        }
    }

    private void SetHealth(HealthCheckResponse.Types.ServingStatus status)
    {
        _health = status;
        Changed?.Invoke();
    }

    private async Task ProbeUntilServingAsync()
    {
        var token = _stop.Token;
        try
        {
            while (!token.IsCancellationRequested)
            {
                var interval = _options().EjectionProbeInterval;
                await Task.Delay(interval, _time, token).ConfigureAwait(false);
                try
                {
                    var reply = await Health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.Add(interval), cancellationToken: token).ConfigureAwait(false);
                    if (reply.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                    {
                        await CheckIdentityAsync(token).ConfigureAwait(false);
                        if (Restarted is { } replay)
                        {
                            // States created while it was out of reach.
                            await replay(this, token).ConfigureAwait(false);
                        }

                        Volatile.Write(ref _consecutiveFailures, 0);
                        Volatile.Write(ref _ejected, 0);
                        SetHealth(reply.Status);
                        return;
                    }
                }
                catch (RpcException)
                {
                    // Still unreachable or stopped: stay out of routing.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task WatchHealthAsync()
    {
        var token = _stop.Token;
        var backoff = TimeSpan.FromMilliseconds(100);
        var reconnected = false;
        while (!token.IsCancellationRequested)
        {
            try
            {
                using var call = Health.Watch(new HealthCheckRequest(), cancellationToken: token);
                while (await call.ResponseStream.MoveNext(token).ConfigureAwait(false))
                {
                    var status = call.ResponseStream.Current.Status;
                    if (reconnected && status == HealthCheckResponse.Types.ServingStatus.Serving)
                    {
                        // The stream broke: the process may be a new one that holds nothing.
                        await CheckIdentityAsync(token).ConfigureAwait(false);
                        reconnected = false;
                    }

                    SetHealth(status);
                    backoff = TimeSpan.FromMilliseconds(100);
                }
            }
            catch (RpcException) when (!token.IsCancellationRequested)
            {
                SetHealth(HealthCheckResponse.Types.ServingStatus.Unknown);
                reconnected = true;
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (RpcException)
            {
                return;
            }

            try
            {
                await Task.Delay(backoff, _time, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
        }
    }

    /// <summary>Reads the worker's instance id; when it changed, forgets what the old process held and restores it.</summary>
    private async Task CheckIdentityAsync(CancellationToken cancellationToken)
    {
        await _identity.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var describe = await Client.DescribeAsync(new DescribeRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: cancellationToken).ConfigureAwait(false);
            if (describe.InstanceId == InstanceId)
            {
                return;
            }

            var joined = Joined;
            Joined = false;
            States.Clear();
            Regions.Clear();
            Version = describe.WorkerVersion;
            InstanceId = describe.InstanceId;
            // A new process: its own fast-path socket (or none).
            await UseFastPathAsync(describe, cancellationToken).ConfigureAwait(false);
            if (Restarted is { } restore)
            {
                await restore(this, cancellationToken).ConfigureAwait(false);
            }

            Joined = joined;
        }
        finally
        {
            _identity.Release();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _fastPath?.Dispose();
        // The token source is not disposed: background loops may still read its token.
        _channel.Dispose();
    }

    public override string ToString() => $"{Name} ({Address})";

    internal static string? TraceParent()
    {
        var activity = Activity.Current;
        return activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;
    }
}
