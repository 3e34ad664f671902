using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Tandem.Remote.Internal.Transport;

namespace Tandem.Remote.Internal.Pool;

/// <summary>Resolves the names of <c>dns:///</c> endpoints (the system resolver unless one is registered: tests inject answers with it).</summary>
internal interface IWorkerAddressResolver
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}

/// <summary>
/// Workers found by DNS: an endpoint <c>dns:///name:port</c> (a Kubernetes
/// headless Service) is resolved at start, every
/// <see cref="RemoteOptions.DnsRefreshInterval"/>, and sooner while one of
/// its workers is ejected. Each address becomes a worker
/// (<c>http://address:port</c>) that joins the pool once it serves; an
/// address the name no longer lists leaves routing at once and is closed
/// when its calls in flight finish (bounded by the drain grace). A name that
/// resolves to nothing leaves no worker (calls get UNAVAILABLE, or fall
/// back) and is resolved again at the next interval; resolution never
/// blocks a thread.
/// </summary>
internal sealed class DnsDiscovery : IAsyncDisposable
{
    public const string Scheme = "dns:///";

    /// <summary>Most workers one name may bring in; further addresses are ignored and logged.</summary>
    public const int MaxAddresses = 64;

    private readonly string _endpoint;
    private readonly string _host;
    private readonly int _port;
    private readonly WorkerPool _pool;
    private readonly Func<RemoteOptions> _options;
    private readonly TimeProvider _time;
    private readonly string? _token;
    private readonly WorkerTls? _tls;
    private readonly ILogger _logger;
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<IPAddress, WorkerConnection> _joined = [];
    private readonly HashSet<IPAddress> _joining = [];
    private readonly Lock _gate = new();
    private string? _lastProblem;
    private Task _loop = Task.CompletedTask;

    /// <param name="tls">TLS to every worker found, whose certificates must name the DNS name (or <see cref="RemoteTlsOptions.ServerName"/>); null: h2c.</param>
    public DnsDiscovery(string endpoint, WorkerPool pool, Func<RemoteOptions> options, TimeProvider time, string? token, ILogger logger, Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null, WorkerTls? tls = null)
    {
        if (Parse(endpoint) is not { } parsed)
        {
            throw new ArgumentException($"'{endpoint}' is not dns:///name:port", nameof(endpoint));
        }

        (_endpoint, _host, _port) = (endpoint, parsed.Host, parsed.Port);
        (_pool, _options, _time, _token, _logger, _tls) = (pool, options, time, token, logger, tls);
        _resolve = resolve ?? ((host, ct) => Dns.GetHostAddressesAsync(host, ct));
    }

    /// <summary>The name and port of <c>dns:///name:port</c>, or null when it is not one.</summary>
    public static (string Host, int Port)? Parse(string endpoint)
    {
        if (!endpoint.StartsWith(Scheme, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = endpoint[Scheme.Length..];
        var colon = rest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(rest[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            return null;
        }

        var host = rest[..colon];
        return Uri.CheckHostName(host) is UriHostNameType.Dns or UriHostNameType.IPv4 ? (host, port) : null;
    }

    /// <summary>Resolves once and waits (up to the start timeout) for the workers found to join, then keeps resolving in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var joins = await RefreshAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await Task.WhenAll(joins).WaitAsync(_options().StartTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Workers not serving yet join when they are; calls meanwhile go to the others.
        }

        _loop = Task.Run(LoopAsync, CancellationToken.None);
    }

    private async Task LoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            var options = _options();
            // Sooner while a worker of this name is ejected: it may have moved.
            bool ejected;
            lock (_gate)
            {
                ejected = _joined.Values.Any(w => w.Ejected);
            }

            var wait = ejected ? Min(options.DnsRefreshInterval, options.EjectionProbeInterval) : options.DnsRefreshInterval;
            try
            {
                await Task.Delay(wait, _time, token).ConfigureAwait(false);
                _ = await RefreshAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>One resolution: starts joining new addresses (returning those joins) and retires vanished ones.</summary>
    private async Task<List<Task>> RefreshAsync(CancellationToken cancellationToken)
    {
        IPAddress[] found;
        try
        {
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            bounded.CancelAfter(Min(_options().StartTimeout, TimeSpan.FromSeconds(10)));
            found = await _resolve(_host, bounded.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested && !_stopping.IsCancellationRequested)
        {
            // NXDOMAIN, no answer in time: as good as no address, retried at the next interval.
            Problem($"'{_host}' did not resolve ({e.Message})");
            found = [];
        }

        var addresses = found.Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6).Distinct().ToList();
        if (addresses.Count > MaxAddresses)
        {
            Problem($"'{_host}' resolved to {addresses.Count} addresses; only the first {MaxAddresses} are used (DnsDiscovery.MaxAddresses)");
            addresses = addresses.Take(MaxAddresses).ToList();
        }
        else if (addresses.Count == 0 && found.Length == 0 && _lastProblem is null)
        {
            Problem($"'{_host}' resolved to no address");
        }
        else if (addresses.Count > 0)
        {
            _lastProblem = null;
        }

        var joins = new List<Task>();
        List<WorkerConnection> gone;
        lock (_gate)
        {
            gone = [.. _joined.Where(kv => !addresses.Contains(kv.Key)).Select(kv => kv.Value)];
            foreach (var worker in gone)
            {
                _joined.Remove(_joined.First(kv => kv.Value == worker).Key);
            }

            foreach (var address in addresses)
            {
                if (!_joined.ContainsKey(address) && _joining.Add(address))
                {
                    joins.Add(JoinAsync(address));
                }
            }
        }

        foreach (var worker in gone)
        {
            RemoteLog.WorkerLeftDns(_logger, worker.Name, _endpoint);
            _pool.Remove(worker);
            _ = RetireAsync(worker);
        }

        return joins;
    }

    private async Task JoinAsync(IPAddress address)
    {
        var scheme = _tls is null ? "http://" : WorkerChannels.TlsScheme;
        var target = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"{scheme}[{address}]:{_port}" : $"{scheme}{address}:{_port}";
        var connection = new WorkerConnection($"{_host}/{address}", target, null, _time, _options, _token, _logger, _tls, _host);
        try
        {
            await connection.WaitServingAsync(_options().StartTimeout, _stopping.Token).ConfigureAwait(false);
            lock (_gate)
            {
                _joined[address] = connection;
            }

            await _pool.JoinAsync(connection, _stopping.Token).ConfigureAwait(false);
            RemoteLog.WorkerFoundDns(_logger, connection.Name, _endpoint);
        }
        catch (Exception e) when (e is RpcException or TimeoutException or InvalidOperationException or OperationCanceledException)
        {
            // Not serving (yet): tried again at the next resolution that still lists it.
            lock (_gate)
            {
                if (_joined.TryGetValue(address, out var joined) && joined == connection)
                {
                    _joined.Remove(address);
                }
            }

            _pool.JoinFailed(connection, e);
            _pool.Remove(connection);
            connection.Dispose();
        }
        finally
        {
            lock (_gate)
            {
                _joining.Remove(address);
            }
        }
    }

    /// <summary>Closes a worker that left routing once its calls in flight are done (bounded by the drain grace).</summary>
    private async Task RetireAsync(WorkerConnection worker)
    {
        await worker.WaitIdleAsync(_options().DrainGrace).ConfigureAwait(false);
        worker.Dispose();
    }

    private void Problem(string message)
    {
        if (message != _lastProblem)
        {
            _lastProblem = message;
            RemoteLog.DnsProblem(_logger, _endpoint, message);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _loop.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
        List<WorkerConnection> joined;
        lock (_gate)
        {
            joined = [.. _joined.Values];
            _joined.Clear();
        }

        foreach (var worker in joined)
        {
            _pool.Remove(worker);
            worker.Dispose();
        }
    }
}
