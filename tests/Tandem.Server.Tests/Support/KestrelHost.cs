using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Tandem.Server.Tests.Support;

/// <summary>
/// Tandem.Server on a real Kestrel listener at 127.0.0.1 and a free port
/// (or the Server:Urls a test gives), for tests that need sockets: uploads
/// that stop midway, slow clients, connection limits, Host headers.
/// </summary>
internal sealed class KestrelHost : IAsyncDisposable
{
    private readonly ServerFactory _factory;

    private KestrelHost(ServerFactory factory, Uri address)
    {
        _factory = factory;
        Address = address;
    }

    public Uri Address { get; }

    public IServiceProvider Services => _factory.Services;

    public static KestrelHost Start(IDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>());
        all.TryAdd("Server:Urls", "http://127.0.0.1:0");
        var factory = new ServerFactory(all);
        try
        {
            factory.UseKestrel();
            factory.StartServer();
            var address = new UriBuilder(factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
            // A server bound to every interface (0.0.0.0, [::]) is still reached over loopback: tests send no traffic off the machine.
            if (address.Host is "0.0.0.0" or "[::]" or "::")
            {
                address.Host = "127.0.0.1";
            }

            return new KestrelHost(factory, address.Uri);
        }
        catch
        {
            factory.Dispose();
            throw;
        }
    }

    public HttpClient CreateClient() => new() { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>A raw TCP connection to the server.</summary>
    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Address.Port));
        return socket;
    }

    /// <summary>Reads until the server closes the connection (or resets it); what it sent, or null when it was still open after <paramref name="timeout"/>.</summary>
    public static async Task<string?> ReadUntilClosedAsync(Socket socket, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        var received = new System.Text.StringBuilder();
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
                if (read == 0)
                {
                    return received.ToString();
                }

                received.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
            }
        }
        catch (SocketException)
        {
            return received.ToString();
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public ValueTask DisposeAsync() => _factory.DisposeAsync();
}
