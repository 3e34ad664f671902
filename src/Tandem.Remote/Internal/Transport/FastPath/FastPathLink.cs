using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Tandem.Remote.Internal.Transport.FastPath;

/// <summary>
/// A worker's fast path as its <c>WorkerConnection</c> uses it: the socket
/// its Describe offered (accepted only next to the worker's own gRPC socket,
/// in the directory that protects both), one live connection, and a
/// reconnect in the background — never on a caller's path — after it closes
/// (a call meanwhile goes over gRPC), at most once per backoff that doubles
/// up to <see cref="MaxBackoff"/> while the worker keeps refusing.
/// </summary>
internal sealed class FastPathLink : IDisposable
{
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(200);
    internal static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly string _workerName;
    private readonly string? _token;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private FastPathConnection? _connection;
    private string? _socket;
    private int _connecting;
    private long _retryAt;
    private TimeSpan _backoff = FirstBackoff;
    private bool _failureLogged;
    // Completed while a connection is open; replaced when it closes.
    private TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FastPathLink(string workerName, string? token, ILogger logger, TimeProvider time)
    {
        _workerName = workerName;
        _token = token;
        _logger = logger;
        _time = time;
    }

    /// <summary>The open connection, or null (calls then use gRPC; a closed one is replaced in the background).</summary>
    public FastPathConnection? Current
    {
        get
        {
            var connection = Volatile.Read(ref _connection);
            if (connection is { CloseReason: null })
            {
                return connection;
            }

            if (Volatile.Read(ref _socket) is not null && _time.GetTimestamp() >= Interlocked.Read(ref _retryAt))
            {
                StartConnecting();
            }

            return null;
        }
    }

    /// <summary>Completes once a connection is open (asking for one if there is none): for tests and benchmarks.</summary>
    public async Task WhenConnected()
    {
        // Current asks for a connection when there is none.
        while (Current is null)
        {
            var signal = Volatile.Read(ref _connected).Task;
            // Completed while no connection is open: a close not processed yet
            // (OnClosed replaces the signal); look again in a moment.
            await (signal.IsCompleted ? Task.Delay(TimeSpan.FromMilliseconds(1), _time) : signal).ConfigureAwait(false);
        }
    }

    /// <summary>Closes the open connection, as a broken socket would (for tests).</summary>
    public void CloseCurrent(string reason) => Volatile.Read(ref _connection)?.Close(reason);

    /// <summary>
    /// Uses the fast path a worker's Describe offered, when it is next to the
    /// worker's gRPC socket <paramref name="grpcSocket"/>; connects now and
    /// returns once connected or refused (a refusal is logged, calls keep gRPC).
    /// An empty <paramref name="offered"/> (a worker without one) turns it off.
    /// </summary>
    public async Task UseAsync(string grpcSocket, string offered, uint version, CancellationToken cancellationToken)
    {
        var previous = Interlocked.Exchange(ref _connection, null);
        previous?.Dispose();
        if (offered.Length == 0)
        {
            Volatile.Write(ref _socket, null);
            return;
        }

        if (version != FastPathFrames.Version)
        {
            Volatile.Write(ref _socket, null);
            RemoteLog.FastPathNotUsed(_logger, _workerName, offered, $"the worker speaks fast-path version {version}, this client {FastPathFrames.Version}");
            return;
        }

        if (!string.Equals(Path.GetDirectoryName(Path.GetFullPath(offered)), Path.GetDirectoryName(Path.GetFullPath(grpcSocket)), StringComparison.Ordinal))
        {
            Volatile.Write(ref _socket, null);
            RemoteLog.FastPathNotUsed(_logger, _workerName, offered, "it is not in the directory of the worker's gRPC socket");
            return;
        }

        Volatile.Write(ref _socket, offered);
        await ConnectAsync(offered, cancellationToken).ConfigureAwait(false);
    }

    private void StartConnecting()
    {
        if (Interlocked.CompareExchange(ref _connecting, 1, 0) != 0)
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                if (Volatile.Read(ref _socket) is { } socket)
                {
                    await ConnectAsync(socket, _stop.Token).ConfigureAwait(false);
                }
            }
            finally
            {
                Volatile.Write(ref _connecting, 0);
            }
        });
    }

    private async Task ConnectAsync(string socket, CancellationToken cancellationToken)
    {
        try
        {
            var connection = await FastPathConnection.ConnectAsync(socket, _token, ConnectTimeout, cancellationToken).ConfigureAwait(false);
            if (_stop.IsCancellationRequested)
            {
                connection.Dispose();
                return;
            }

            Interlocked.Exchange(ref _connection, connection)?.Dispose();
            Volatile.Read(ref _connected).TrySetResult();
            _backoff = FirstBackoff;
            _failureLogged = false;
            RemoteLog.FastPathConnected(_logger, _workerName, socket, connection.MaxInFlight);
            _ = connection.Closed.ContinueWith(
                static (_, state) =>
                {
                    var (link, closed) = ((FastPathLink, FastPathConnection))state!;
                    link.OnClosed(closed);
                },
                (this, connection),
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or RpcException or OperationCanceledException)
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            Interlocked.Exchange(ref _retryAt, _time.GetTimestamp() + (long)(_backoff.TotalSeconds * _time.TimestampFrequency));
            _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
            if (!_failureLogged)
            {
                _failureLogged = true;
                RemoteLog.FastPathNotUsed(_logger, _workerName, socket, e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message);
            }
        }
    }

    private void OnClosed(FastPathConnection closed)
    {
        if (Volatile.Read(ref _connection) != closed)
        {
            return;
        }

        var signal = Volatile.Read(ref _connected);
        if (signal.Task.IsCompleted)
        {
            Interlocked.CompareExchange(ref _connected, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), signal);
        }

        if (!_stop.IsCancellationRequested)
        {
            RemoteLog.FastPathClosed(_logger, _workerName, closed.CloseReason ?? "closed");
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        Interlocked.Exchange(ref _connection, null)?.Dispose();
    }
}
