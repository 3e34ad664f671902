using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

/// <summary>Kernel calls the dispatcher refuses or cannot complete: 429 (queue full), 503 (no backend), 504 (deadline), each retryable with Retry-After.</summary>
public sealed class KernelFailureTests
{
    private const string Option = """{"spot":100,"strike":100,"rate":0.01,"volatility":0.2,"maturity":1,"kind":"call"}""";

    [Fact]
    public async Task PriceEuropean_QueueFull_Returns429WithRetryAfter()
    {
        await using var factory = CreateSut(new() { ["Tandem:Batching:QueueLimit"] = "1" });
        using var client = factory.CreateClient();
        using var slowCancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var slow = StartSlowCall(client, slowCancel.Token);

        HttpResponseMessage? refused = null;
        for (ulong seed = 100; refused is null && !slowCancel.IsCancellationRequested; seed++)
        {
            if (slow.IsCompleted)
            {
                // A small call held the only slot when the slow one arrived, so the slow one was refused: send it again.
                using var early = await slow;
                Assert.Equal(HttpStatusCode.TooManyRequests, early.StatusCode);
                slow = StartSlowCall(client, slowCancel.Token);
            }

            // A distinct seed keeps each small call a fresh one.
            var response = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Option}}],"paths":1,"seed":{{seed}}}"""), slowCancel.Token);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && !slow.IsCompleted)
            {
                refused = response;
            }
            else
            {
                response.Dispose();
            }
        }

        await slowCancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => slow);
        Assert.NotNull(refused);
        await Problems.AssertAsync(refused, HttpStatusCode.TooManyRequests, "RESOURCE_EXHAUSTED", "montecarlo.european", "QueueLimit");
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        refused.Dispose();
    }

    [Fact]
    public async Task PriceEuropean_RemoteEndpointMissingWithoutFallback_Returns503WithRetryAfter()
    {
        await using var factory = CreateSut(MissingRemote());
        using var client = factory.CreateClient();

        using var response = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Option}}],"paths":1000}"""));

        await Problems.AssertAsync(response, HttpStatusCode.ServiceUnavailable, "UNAVAILABLE", "remote");
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task CreateFromJson_RemoteEndpointMissingWithoutFallback_Returns503AndCreatesNothing()
    {
        await using var factory = CreateSut(MissingRemote());
        using var client = factory.CreateClient();

        using var response = await client.PostAsync("/collections", Http.Collection("unreachable", [[1, 2]]));

        await Problems.AssertAsync(response, HttpStatusCode.ServiceUnavailable, "UNAVAILABLE", "remote");
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/collections/unreachable")).StatusCode);
    }

    [Fact]
    public async Task Readyz_RemoteEndpointMissingWithoutFallback_Returns503()
    {
        await using var factory = CreateSut(MissingRemote());
        using var client = factory.CreateClient();

        using var response = await client.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task PriceEuropean_CallTimeoutShorterThanTheWork_Returns504WithRetryAfter()
    {
        await using var factory = CreateSut(new() { ["Tandem:CallTimeout"] = "00:00:00.001" });
        using var client = factory.CreateClient();

        using var response = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Option}},{{Option}}],"paths":200000000,"seed":3}"""));

        await Problems.AssertAsync(response, HttpStatusCode.GatewayTimeout, "DEADLINE_EXCEEDED", "deadline");
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
    }

    /// <summary>The most paths there are: this call holds the kernel's only queue slot until it is cancelled.</summary>
    private static Task<HttpResponseMessage> StartSlowCall(HttpClient client, CancellationToken cancellationToken) =>
        client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Option}}],"paths":1000000000,"seed":1}"""), cancellationToken);

    private static ServerFactory CreateSut(Dictionary<string, string?> settings) => new(settings);

    // The first call waits StartTimeout for the endpoint to serve; later calls fail at once while it is retried in the background.
    private static Dictionary<string, string?> MissingRemote() => new()
    {
        ["Tandem:Remote:StartTimeout"] = "00:00:01",
        ["Tandem:Backend"] = "Remote",
        ["Tandem:Remote:Endpoints:0"] = "unix:/nonexistent.sock",
        ["Tandem:FallbackToManaged"] = "false",
    };
}
