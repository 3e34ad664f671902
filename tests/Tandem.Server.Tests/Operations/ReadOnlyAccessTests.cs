using System.Net;
using System.Net.Http.Headers;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Operations;

/// <summary>
/// /metrics, /dashboard/* and /openapi/* need the admin token when the server
/// listens off loopback (here 0.0.0.0, still reached over 127.0.0.1), and
/// stay open on loopback.
/// </summary>
public sealed class ReadOnlyAccessTests : IAsyncLifetime
{
    private KestrelHost _host = null!;

    public static TheoryData<string> ReadOnlyPaths => ["/metrics", "/dashboard/snapshot", "/openapi/v1.json"];

    public Task InitializeAsync()
    {
        _host = KestrelHost.Start(new Dictionary<string, string?> { ["Server:Urls"] = "http://0.0.0.0:0" });
        return Task.CompletedTask;
    }

    [Theory]
    [MemberData(nameof(ReadOnlyPaths))]
    public async Task ReadOnlyEndpoint_OffLoopbackWithoutToken_Returns401(string path)
    {
        using var client = _host.CreateClient();
        using var refusals = new Refusals(_host.Services);

        using var response = await client.GetAsync(path);

        await Problems.AssertAsync(response, HttpStatusCode.Unauthorized, "UNAUTHENTICATED", "off loopback", "0.0.0.0", "Authorization: Bearer");
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(1, refusals["read_only_token"]);
    }

    [Fact]
    public async Task ReadOnlyEndpoint_OffLoopbackWithWrongToken_Returns401InvalidToken()
    {
        using var client = _host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong-token-0123456789");

        using var response = await client.GetAsync("/metrics");

        await Problems.AssertAsync(response, HttpStatusCode.Unauthorized, "UNAUTHENTICATED", "token is wrong");
        Assert.Contains("error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
    }

    [Theory]
    [MemberData(nameof(ReadOnlyPaths))]
    public async Task ReadOnlyEndpoint_OffLoopbackWithToken_Returns200(string path)
    {
        using var client = _host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerFactory.AdminToken);

        using var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/collections")]
    public async Task ProbesAndApi_OffLoopbackWithoutToken_StayOpen(string path)
    {
        using var client = _host.CreateClient();

        using var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [MemberData(nameof(ReadOnlyPaths))]
    public async Task ReadOnlyEndpoint_OnLoopbackWithoutToken_Returns200(string path)
    {
        await using var loopback = KestrelHost.Start();
        using var client = loopback.CreateClient();

        using var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();
}
