using System.Text.Json;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Operations;

public sealed class DashboardTests : IDisposable
{
    private static readonly string[] SnapshotFields =
        ["time", "intervalSeconds", "mode", "throughput", "latency", "http", "queueCompute", "batchSizes", "errors", "fallbacks", "kernels", "workers", "native", "load", "operations"];

    private readonly ServerFactory _factory = new(new Dictionary<string, string?> { ["Server:Dashboard:Interval"] = "00:00:00.200" });

    [Fact]
    public async Task Snapshot_Requested_HasEveryDocumentedField()
    {
        using var client = _factory.CreateClient();

        var snapshot = await (await client.GetAsync("/dashboard/snapshot")).ReadJsonAsync();

        foreach (var field in SnapshotFields)
        {
            Assert.True(snapshot.TryGetProperty(field, out _), $"the snapshot has no '{field}'");
        }

        // Every kernel the host knows, diagnostics.noop included: no list of names is kept anywhere.
        Assert.Equal(["similarity.topk", "montecarlo.european", "hash.blake3", "diagnostics.noop"], snapshot.GetProperty("kernels").EnumerateArray().Select(k => k.GetProperty("kernel").GetString()));
        Assert.Equal(1, snapshot.GetProperty("native").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Snapshot_AfterSearches_ShowsSearchThroughput()
    {
        using var client = _factory.CreateClient();
        await client.CreateCollectionAsync("watched", [[1, 0], [0, 1]]);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Throughput is per closed interval: keep searching until an interval with searches is published.
        JsonElement? point = null;
        while (point is null)
        {
            (await client.PostAsync("/collections/watched/search", Http.Json("""{"query":[1,0],"k":1}"""), timeout.Token)).EnsureSuccessStatusCode();
            var snapshot = await (await client.GetAsync("/dashboard/snapshot", timeout.Token)).ReadJsonAsync();
            point = snapshot.GetProperty("throughput").EnumerateArray()
                .Where(p => p.GetProperty("kernel").GetString() == "similarity.topk" && p.GetProperty("perSecond").GetDouble() > 0)
                .Select(p => (JsonElement?)p)
                .FirstOrDefault();
        }

        Assert.Equal("native", point.Value.GetProperty("backend").GetString());
    }

    [Fact]
    public async Task Events_Subscribed_StreamsASnapshotEvent()
    {
        using var client = _factory.CreateClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        using var response = await client.GetAsync("/dashboard/events", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        string? data = null;
        var events = 0;
        while (events < 2)
        {
            var line = await reader.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("the event stream ended");
            if (line == "event: snapshot")
            {
                events++;
                data = (await reader.ReadLineAsync(timeout.Token))?["data: ".Length..];
            }
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.True(JsonDocument.Parse(data!).RootElement.TryGetProperty("throughput", out _));
    }

    public void Dispose() => _factory.Dispose();
}
