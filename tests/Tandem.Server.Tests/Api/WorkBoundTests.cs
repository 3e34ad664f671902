using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

/// <summary>Issue 12's hostile request (100 options × 10^9 paths) refused at once, and the server's default call timeout.</summary>
public sealed class WorkBoundTests
{
    private const string Option = """{"spot":100,"strike":100,"rate":0.01,"volatility":0.2,"maturity":1,"kind":"call"}""";

    [Fact]
    public async Task PriceEuropean_HundredOptionsAtMostPaths_Returns413NamingTheLimitWithoutRetryAfterAndKeepsServing()
    {
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();
        var hundred = string.Join(",", Enumerable.Repeat(Option, 100));

        using var refused = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{hundred}}],"paths":1000000000,"seed":1}"""));
        using var served = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Option}}],"paths":1000,"seed":1}"""));

        // The same request is refused however long the client waits: 413, not the 429 of a busy backend.
        await Problems.AssertAsync(refused, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", "asks for 100000000000 units of work", "limit max_work_per_call", "split the call");
        Assert.False(refused.Headers.Contains("Retry-After"));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task Defaults_NoCallTimeoutConfigured_TenSeconds()
    {
        await using var factory = new ServerFactory();

        var options = factory.Services.GetRequiredService<IOptionsMonitor<TandemOptions>>().CurrentValue;

        Assert.Equal(TimeSpan.FromSeconds(10), options.CallTimeout);
    }
}
