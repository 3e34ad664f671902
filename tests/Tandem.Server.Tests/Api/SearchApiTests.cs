using System.Text.Json;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class SearchApiTests(SharedServer server) : IClassFixture<SharedServer>
{
    private const int Count = 300;
    private const int Dimension = 16;
    private const int K = 7;
    private static readonly float[][] Rows = Vectors.Random(Count, Dimension, seed: 7);

    [Theory]
    [InlineData("dot")]
    [InlineData("cosine")]
    [InlineData("l2")]
    public async Task Search_SingleQuery_MatchesBruteForce(string metric)
    {
        var (client, name) = await CreateSutAsync();
        var query = Vectors.Random(1, Dimension, seed: 11)[0];

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(JsonSerializer.Serialize(new { query, k = K, metric })));

        var body = await response.ReadJsonAsync();
        Assert.Equal(metric, body.GetProperty("metric").GetString());
        Assert.Equal(K, body.GetProperty("k").GetInt32());
        Assert.Equal("native", body.GetProperty("backend").GetString());
        AssertMatchesBruteForce(metric, query, body.GetProperty("results")[0]);
    }

    [Theory]
    [InlineData("dot")]
    [InlineData("cosine")]
    [InlineData("l2")]
    public async Task Search_ManyQueries_AnswersEachInOrderLikeBruteForce(string metric)
    {
        var (client, name) = await CreateSutAsync();
        var queries = Vectors.Random(5, Dimension, seed: 12);

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(JsonSerializer.Serialize(new { queries, k = K, metric })));

        var results = (await response.ReadJsonAsync()).GetProperty("results");
        Assert.Equal(queries.Length, results.GetArrayLength());
        for (var q = 0; q < queries.Length; q++)
        {
            AssertMatchesBruteForce(metric, queries[q], results[q]);
        }
    }

    [Fact]
    public async Task Search_KAboveCount_ReturnsEveryRow()
    {
        using var client = server.CreateClient();
        var name = SharedServer.UniqueName("small");
        await client.CreateCollectionAsync(name, [[1, 0], [0, 1], [1, 1]]);

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[1,0],"k":50}"""));

        var hits = (await response.ReadJsonAsync()).GetProperty("results")[0];
        Assert.Equal(3, hits.GetProperty("ids").GetArrayLength());
    }

    [Fact]
    public async Task Search_DefaultMetric_IsDot()
    {
        var (client, name) = await CreateSutAsync();
        var query = Vectors.Random(1, Dimension, seed: 13)[0];

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(JsonSerializer.Serialize(new { query, k = K })));

        var body = await response.ReadJsonAsync();
        Assert.Equal("dot", body.GetProperty("metric").GetString());
        AssertMatchesBruteForce("dot", query, body.GetProperty("results")[0]);
    }

    private async Task<(HttpClient Client, string Name)> CreateSutAsync()
    {
        var client = server.CreateClient();
        var name = SharedServer.UniqueName("search");
        await client.CreateCollectionAsync(name, Rows);
        return (client, name);
    }

    /// <summary>Each hit's score is its row's true score, and the scores are the true top k (ids may differ only among equal scores).</summary>
    private static void AssertMatchesBruteForce(string metric, float[] query, JsonElement hits)
    {
        var ids = hits.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var scores = hits.GetProperty("scores").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var expected = Vectors.TopScores(metric, query, Rows, K);
        Assert.Equal(K, ids.Length);
        Assert.Equal(ids.Length, ids.Distinct().Count());
        for (var i = 0; i < K; i++)
        {
            Assert.Equal(expected[i], scores[i], 1e-4);
            Assert.Equal(Vectors.Score(metric, query, Rows[ids[i]]), scores[i], 1e-4);
        }
    }
}
