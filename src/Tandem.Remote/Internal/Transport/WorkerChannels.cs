using System.Net.Sockets;
using Grpc.Net.Client;

namespace Tandem.Remote.Internal.Transport;

/// <summary>
/// gRPC channels to a worker: h2c (HTTP/2 with prior knowledge) over a Unix
/// domain socket or over TCP, or HTTP/2 over TLS (<c>https://</c>, the
/// handshake done by <see cref="WorkerTls"/> in the connect callback).
/// </summary>
internal static class WorkerChannels
{
    public const string UnixScheme = "unix:";
    public const string TlsScheme = "https://";

    /// <summary>
    /// A channel to <paramref name="address"/>; with a <paramref name="token"/>,
    /// every call carries it. An <c>https://</c> address needs <paramref name="tls"/>;
    /// the worker's certificate must name <paramref name="serverName"/> (null: the address's host).
    /// </summary>
    public static GrpcChannel Create(string address, string? token = null, WorkerTls? tls = null, string? serverName = null)
    {
        var unix = address.StartsWith(UnixScheme, StringComparison.Ordinal);
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            // Over a network a partition stalls a connection without a reset:
            // HTTP/2 pings find it within 10 s, failing its health watch so the
            // worker leaves routing even when no call is there to time out.
            KeepAlivePingDelay = unix ? TimeSpan.FromSeconds(30) : TimeSpan.FromSeconds(5),
            KeepAlivePingTimeout = unix ? TimeSpan.FromSeconds(10) : TimeSpan.FromSeconds(5),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = TimeSpan.FromSeconds(5),
        };
        var target = address;
        if (unix)
        {
            var path = address[UnixScheme.Length..];
            handler.ConnectCallback = (_, cancellationToken) => ConnectUnixAsync(path, cancellationToken);
            // The authority is never resolved: ConnectCallback opens the socket.
            target = "http://localhost";
        }
        else if (address.StartsWith(TlsScheme, StringComparison.Ordinal))
        {
            ArgumentNullException.ThrowIfNull(tls);
            target = "http://" + address[TlsScheme.Length..];
            var name = tls.ServerName(serverName ?? new Uri(address).IdnHost);
            handler.ConnectCallback = (context, cancellationToken) => tls.ConnectAsync(context.DnsEndPoint, name, cancellationToken);
        }

        return GrpcChannel.ForAddress(target, new GrpcChannelOptions
        {
            HttpHandler = token is null ? handler : new WorkerTokenHandler(token) { InnerHandler = handler },
            HttpVersion = System.Net.HttpVersion.Version20,
            HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            MaxReceiveMessageSize = null,
            MaxSendMessageSize = null,
            DisposeHttpClient = true,
        });
    }

    private static async ValueTask<Stream> ConnectUnixAsync(string path, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
