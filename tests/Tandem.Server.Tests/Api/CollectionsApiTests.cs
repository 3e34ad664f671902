using System.Net;
using System.Text.Json;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class CollectionsApiTests(SharedServer server) : IClassFixture<SharedServer>
{
    private static readonly float[][] Rows = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5f, 0.5f, 0]];

    [Fact]
    public async Task CreateFromJson_ValidVectors_Returns201WithLocationAndShape()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("json");

        using var response = await client.PostAsync("/collections", Http.Collection(name, Rows));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/collections/{name}", response.Headers.Location?.OriginalString);
        var body = await response.ReadJsonAsync();
        Assert.Equal(name, body.GetProperty("name").GetString());
        Assert.Equal(4, body.GetProperty("count").GetInt32());
        Assert.Equal(3, body.GetProperty("dimension").GetInt32());
        Assert.Equal("native", body.GetProperty("backend").GetString());
        Assert.True(body.GetProperty("sizeBytes").GetInt64() >= 4 * 3 * sizeof(float));
    }

    [Fact]
    public async Task CreateFromJson_WithIds_SearchAnswersWithThoseIds()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("ids");
        var body = JsonSerializer.Serialize(new { name, vectors = Rows, ids = new[] { 100L, 200, 300, 400 } });
        (await client.PostAsync("/collections", Http.Json(body))).EnsureSuccessStatusCode();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[0,0,1],"k":1}"""));

        var result = await response.ReadJsonAsync();
        Assert.Equal(300, result.GetProperty("results")[0].GetProperty("ids")[0].GetInt64());
    }

    [Fact]
    public async Task CreateFromRaw_WithDimension_Returns201AndHoldsTheRows()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("raw");

        using var response = await client.PutAsync($"/collections/{name}?dimension=3", Http.Raw(Rows));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/collections/{name}", response.Headers.Location?.OriginalString);
        var body = await response.ReadJsonAsync();
        Assert.Equal(4, body.GetProperty("count").GetInt32());
        Assert.Equal(3, body.GetProperty("dimension").GetInt32());
        Assert.Equal(1, await NearestAsync(client, name, [0, 1, 0]));
    }

    [Theory]
    [InlineData("f4")]
    [InlineData("f8")]
    public async Task CreateFromNpy_FloatArray_Returns201AndHoldsTheRows(string dtype)
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName($"npy-{dtype}");
        var npy = dtype == "f4" ? Npy.F4(Rows) : Npy.F8(Rows);

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(npy));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var body = await response.ReadJsonAsync();
        Assert.Equal(4, body.GetProperty("count").GetInt32());
        Assert.Equal(3, body.GetProperty("dimension").GetInt32());
        Assert.Equal(2, await NearestAsync(client, name, [0, 0, 1]));
        Assert.Equal(3, await NearestAsync(client, name, [0.5f, 0.5f, 0]));
    }

    [Fact]
    public async Task List_AfterCreate_ListsTheCollectionWithItsShape()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("listed");
        await client.CreateCollectionAsync(name, Rows);

        var list = await (await client.GetAsync("/collections")).ReadJsonAsync();

        var entry = list.EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);
        Assert.Equal(4, entry.GetProperty("count").GetInt32());
        Assert.Equal(3, entry.GetProperty("dimension").GetInt32());
    }

    [Fact]
    public async Task Describe_Existing_ReturnsItsShapeAndBackend()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("described");
        await client.CreateCollectionAsync(name, Rows);

        var body = await (await client.GetAsync($"/collections/{name}")).ReadJsonAsync();

        Assert.Equal(name, body.GetProperty("name").GetString());
        Assert.Equal(4, body.GetProperty("count").GetInt32());
        Assert.Equal("native", body.GetProperty("backend").GetString());
        Assert.True(body.TryGetProperty("createdAt", out _));
    }

    [Fact]
    public async Task Drop_Existing_Returns204ThenNotFound()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("dropped");
        await client.CreateCollectionAsync(name, Rows);

        using var dropped = await client.DeleteAsync($"/collections/{name}");
        using var described = await client.GetAsync($"/collections/{name}");
        using var droppedAgain = await client.DeleteAsync($"/collections/{name}");
        using var searched = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[1,0,0]}"""));

        Assert.Equal(HttpStatusCode.NoContent, dropped.StatusCode);
        await Problems.AssertAsync(described, HttpStatusCode.NotFound, "NOT_FOUND", name, "GET /collections");
        await Problems.AssertAsync(droppedAgain, HttpStatusCode.NotFound, "NOT_FOUND", name);
        await Problems.AssertAsync(searched, HttpStatusCode.NotFound, "NOT_FOUND", name);
        var list = await (await client.GetAsync("/collections")).ReadJsonAsync();
        Assert.DoesNotContain(list.EnumerateArray(), c => c.GetProperty("name").GetString() == name);
    }

    [Fact]
    public async Task Drop_ThenCreateSameName_Succeeds()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("recreated");
        await client.CreateCollectionAsync(name, Rows);
        (await client.DeleteAsync($"/collections/{name}")).EnsureSuccessStatusCode();

        using var response = await client.PostAsync("/collections", Http.Collection(name, [[1, 2]]));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(2, (await response.ReadJsonAsync()).GetProperty("dimension").GetInt32());
    }

    private HttpClient CreateSut() => server.CreateClient();

    private static async Task<long> NearestAsync(HttpClient client, string name, float[] query)
    {
        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(JsonSerializer.Serialize(new { query, k = 1, metric = "cosine" })));
        return (await response.ReadJsonAsync()).GetProperty("results")[0].GetProperty("ids")[0].GetInt64();
    }
}
