using System.Collections.Concurrent;
using System.Diagnostics;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Operations;

public sealed class TelemetryTests
{
    [Fact]
    public async Task Metrics_AfterCalls_ExposesTandemAndHttpServerSeries()
    {
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();
        await client.CreateCollectionAsync("metered", [[1, 0], [0, 1]]);
        (await client.PostAsync("/collections/metered/search", Http.Json("""{"query":[1,0],"k":1}"""))).EnsureSuccessStatusCode();

        // The exporter caches a scrape briefly; ask until the calls show.
        var metrics = await EventuallyAsync(async () => await client.GetStringAsync("/metrics"), text => text.Contains("tandem_calls_total", StringComparison.Ordinal) && text.Contains("http_server_request_duration_seconds", StringComparison.Ordinal));

        Assert.Contains("kernel=\"similarity.topk\"", metrics);
        Assert.Contains("http_server_request_duration_seconds_bucket", metrics);
    }

    [Fact]
    public async Task Search_WithTraceparent_TandemCallActivityCarriesTheCallersTraceId()
    {
        var traceId = ActivityTraceId.CreateRandom();
        var calls = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Tandem",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (activity.OperationName == "tandem.call" && activity.TraceId == traceId)
                {
                    calls.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();
        await client.CreateCollectionAsync("traced", [[1, 0], [0, 1]]);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/collections/traced/search") { Content = Http.Json("""{"query":[1,0],"k":1}""") };
        request.Headers.Add("traceparent", $"00-{traceId.ToHexString()}-{ActivitySpanId.CreateRandom().ToHexString()}-01");

        using var response = await client.SendAsync(request);

        await response.ReadJsonAsync();
        var call = Assert.Single(calls);
        Assert.Equal("similarity.topk", call.GetTagItem("tandem.kernel"));
        Assert.Equal("native", call.GetTagItem("tandem.backend"));
    }

    [Fact]
    public async Task Problem_WithTraceparent_CorrelationIdIsTheTraceId()
    {
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/collections/missing");
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");

        using var response = await client.SendAsync(request);

        var problem = await Problems.AssertAsync(response, System.Net.HttpStatusCode.NotFound, "NOT_FOUND");
        Assert.Equal(traceId, problem.GetProperty("correlationId").GetString());
    }

    private static async Task<T> EventuallyAsync<T>(Func<Task<T>> read, Func<T, bool> done)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            await Task.Delay(100, timeout.Token);
        }
    }
}
