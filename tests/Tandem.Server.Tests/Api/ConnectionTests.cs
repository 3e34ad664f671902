using System.Net;
using System.Net.Sockets;
using System.Text;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

/// <summary>What only a real socket shows: uploads cut short or in progress, and clients too slow to be served.</summary>
public sealed class ConnectionTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private KestrelHost _host = null!;

    public Task InitializeAsync()
    {
        _host = KestrelHost.Start(new Dictionary<string, string?>
        {
            ["Server:Limits:RequestHeadersTimeout"] = "00:00:01",
            ["Server:Limits:MinBodyRateGracePeriod"] = "00:00:02",
            ["Server:Limits:MinBodyBytesPerSecond"] = "240",
        });
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Upload_ClientClosesMidway_NothingBecomesVisibleAndTheNameStaysFree()
    {
        using var client = _host.CreateClient();
        using (var socket = await _host.ConnectAsync())
        {
            await socket.SendAsync(UploadHeaders("cut", dimension: 4, contentLength: 1 << 20));
            await socket.SendAsync(new byte[4096]);
            socket.Close();
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        Assert.DoesNotContain("\"cut\"", await client.GetStringAsync("/collections"));
        // The abandoned upload holds nothing: the same name can be created (retried while the server notices the close).
        await Poll.UntilAsync(async () => (await client.PutAsync("/collections/cut?dimension=4", Http.Raw([[1, 2, 3, 4]]))).StatusCode == HttpStatusCode.Created, Bound, intervalMs: 50);
    }

    [Fact]
    public async Task Upload_InProgress_IsNotVisibleUntilComplete()
    {
        using var client = _host.CreateClient();
        var rows = Vectors.Random(20_000, 8, seed: 5);
        var body = Vectors.RawF32(rows);
        var half = body.Length / 2;
        using var socket = await _host.ConnectAsync();
        await socket.SendAsync(UploadHeaders("growing", dimension: 8, body.Length));
        await socket.SendAsync(body.AsMemory(0, half));

        var listed = await client.GetStringAsync("/collections");
        using var described = await client.GetAsync("/collections/growing");
        using var searched = await client.PostAsync("/collections/growing/search", Http.Json("""{"query":[1,0,0,0,0,0,0,0]}"""));
        using var competing = await client.PutAsync("/collections/growing?dimension=8", Http.Raw([[1, 2, 3, 4, 5, 6, 7, 8]]));
        await socket.SendAsync(body.AsMemory(half));
        var response = await ReadResponseAsync(socket);

        Assert.DoesNotContain("\"growing\"", listed);
        await Problems.AssertAsync(described, HttpStatusCode.NotFound, "NOT_FOUND", "'growing'");
        await Problems.AssertAsync(searched, HttpStatusCode.NotFound, "NOT_FOUND", "'growing'");
        // A competing upload under the same name wins or loses as a whole; the slow one then gets 409 or 201 accordingly.
        Assert.True(competing.StatusCode == HttpStatusCode.Created, $"the complete upload should have been created, got {(int)competing.StatusCode}");
        Assert.StartsWith("HTTP/1.1 409", response);
        var final = await (await client.GetAsync("/collections/growing")).ReadJsonAsync();
        Assert.Equal(1, final.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task Upload_CompletedOverASocket_BecomesVisible()
    {
        using var client = _host.CreateClient();
        var body = Vectors.RawF32(Vectors.Random(1000, 4, seed: 6));
        using var socket = await _host.ConnectAsync();
        await socket.SendAsync(UploadHeaders("whole", dimension: 4, body.Length));
        await socket.SendAsync(body.AsMemory(0, 1000));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/collections/whole")).StatusCode);

        await socket.SendAsync(body.AsMemory(1000));
        var response = await ReadResponseAsync(socket);

        Assert.StartsWith("HTTP/1.1 201", response);
        var described = await (await client.GetAsync("/collections/whole")).ReadJsonAsync();
        Assert.Equal(1000, described.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task Headers_SentSlowerThanRequestHeadersTimeout_ConnectionClosedWhileOthersAreServed()
    {
        using var client = _host.CreateClient();
        using var socket = await _host.ConnectAsync();
        using var stop = new CancellationTokenSource(Bound);
        var drip = DripAsync(socket, Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + new string('a', 1000)), TimeSpan.FromMilliseconds(200), stop.Token);

        var closed = await KestrelHost.ReadUntilClosedAsync(socket, Bound);
        using var other = await client.GetAsync("/healthz");
        await stop.CancelAsync();
        await drip;

        Assert.NotNull(closed);
        Assert.DoesNotContain("200 OK", closed);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task Upload_BodySlowerThanMinBodyRate_ConnectionClosedAndNothingCreated()
    {
        using var client = _host.CreateClient();
        using var socket = await _host.ConnectAsync();
        await socket.SendAsync(UploadHeaders("trickle", dimension: 4, contentLength: 64 << 10));
        using var stop = new CancellationTokenSource(Bound);
        var drip = DripAsync(socket, new byte[64 << 10], TimeSpan.FromMilliseconds(250), stop.Token);

        var closed = await KestrelHost.ReadUntilClosedAsync(socket, Bound);
        await stop.CancelAsync();
        await drip;

        Assert.NotNull(closed);
        Assert.DoesNotContain("201", closed);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/collections/trickle")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static byte[] UploadHeaders(string name, int dimension, long contentLength) => Encoding.ASCII.GetBytes(
        $"PUT /collections/{name}?dimension={dimension} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {contentLength}\r\n\r\n");

    /// <summary>Sends one byte per <paramref name="interval"/> (slowness is what is being tested) until done, cancelled or refused.</summary>
    private static async Task DripAsync(Socket socket, byte[] bytes, TimeSpan interval, CancellationToken cancellationToken)
    {
        try
        {
            for (var i = 0; i < bytes.Length; i++)
            {
                await socket.SendAsync(bytes.AsMemory(i, 1), SocketFlags.None, cancellationToken);
                await Task.Delay(interval, cancellationToken);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The server closed the connection, or the test is done.
        }
    }

    /// <summary>The status line and headers of one HTTP/1.1 response.</summary>
    private static async Task<string> ReadResponseAsync(Socket socket)
    {
        using var cancel = new CancellationTokenSource(Bound);
        var received = new StringBuilder();
        var buffer = new byte[4096];
        while (!received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
            if (read == 0)
            {
                break;
            }

            received.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        return received.ToString();
    }
}
