using System.Net.Sockets;
using System.Text;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Operations;

/// <summary>AllowedHosts on a loopback server: only the loopback names pass, whatever the port (against DNS rebinding).</summary>
public sealed class HostFilteringTests : IAsyncLifetime
{
    private KestrelHost _host = null!;

    public Task InitializeAsync()
    {
        _host = KestrelHost.Start();
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:5080")]
    [InlineData("localhost.evil.example")]
    [InlineData("10.0.0.1")]
    public async Task Request_ForeignHostHeader_Returns400ProblemNamingAllowedHosts(string host)
    {
        using var refusals = new Refusals(_host.Services);

        var response = await GetAsync(host);

        Assert.StartsWith("HTTP/1.1 400", response);
        Assert.Contains("Content-Type: application/problem+json", response);
        Assert.Contains($"Host '{host}'", response);
        Assert.Contains("localhost, 127.0.0.1, [::1] (AllowedHosts", response);
        Assert.Contains("\"code\":\"INVALID_ARGUMENT\"", response);
        Assert.Equal(1, refusals["host"]);
    }

    [Theory]
    [InlineData("localhost")]
    [InlineData("LOCALHOST:{port}")]
    [InlineData("127.0.0.1:{port}")]
    [InlineData("[::1]:{port}")]
    [InlineData("[::1]")]
    public async Task Request_LoopbackHostHeader_IsServed(string host)
    {
        var response = await GetAsync(host.Replace("{port}", $"{_host.Address.Port}", StringComparison.Ordinal));

        Assert.StartsWith("HTTP/1.1 200", response);
    }

    [Fact]
    public async Task Request_ConfiguredAllowedHosts_ReplaceTheLoopbackDefault()
    {
        await using var host = KestrelHost.Start(new Dictionary<string, string?> { ["AllowedHosts"] = "tandem.internal" });

        Assert.StartsWith("HTTP/1.1 200", await GetAsync(host, "tandem.internal"));
        Assert.StartsWith("HTTP/1.1 400", await GetAsync(host, "localhost"));
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private Task<string> GetAsync(string host) => GetAsync(_host, host);

    private static async Task<string> GetAsync(KestrelHost server, string host)
    {
        using var socket = await server.ConnectAsync();
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        return await KestrelHost.ReadUntilClosedAsync(socket, TimeSpan.FromSeconds(20)) ?? "(no answer)";
    }
}
