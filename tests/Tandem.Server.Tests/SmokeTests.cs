using System.Net;
using System.Net.Http.Json;

namespace Tandem.Server.Tests;

public sealed class SmokeTests
{
    [Fact]
    public async Task Healthz_Live_ReturnsHealthy()
    {
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();

        var response = await client.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task CreateAndSearch_JsonCollection_ReturnsNearestFirst()
    {
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();

        var created = await client.PostAsJsonAsync("/collections", new { name = "docs", vectors = new[] { new[] { 1f, 0f }, new[] { 0f, 1f } } });
        var search = await client.PostAsJsonAsync("/collections/docs/search", new { query = new[] { 0.1f, 0.9f }, k = 1 });

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await search.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        Assert.Equal(1, body.GetProperty("results")[0].GetProperty("ids")[0].GetInt64());
    }
}
