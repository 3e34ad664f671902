using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class SearchBadInputTests(SharedServer server) : IClassFixture<SharedServer>
{
    [Fact]
    public async Task Search_QueryOfWrongLength_Returns400NamingBothDimensions()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[1,0]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'query'", "2 values", "dimension 3");
    }

    [Fact]
    public async Task Search_RaggedQueries_Returns400NamingTheRow()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"queries":[[1,0,0],[1,0]]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'queries'", "row 1");
    }

    [Fact]
    public async Task Search_QueriesOfWrongDimension_Returns400()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"queries":[[1,0,0,0],[1,0,0,0]]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'queries'", "dimension 4", "dimension 3");
    }

    [Theory]
    [InlineData("""{"k":3}""")]
    [InlineData("""{"query":[1,0,0],"queries":[[1,0,0]]}""")]
    public async Task Search_NeitherOrBothQueryFields_Returns400(string json)
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(json));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "exactly one of 'query'", "'queries'");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(4097)]
    public async Task Search_KOutOfRange_Returns400NamingK(int k)
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json($$"""{"query":[1,0,0],"k":{{k}}}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "k", k.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Search_UnknownMetric_Returns400ListingTheMetrics()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[1,0,0],"metric":"manhattan"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'metric'", "dot, cosine or l2", "manhattan");
    }

    [Fact]
    public async Task Search_QueryOverflowingFloat_Returns400()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[1,-1e39,0]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "queries", "row 0", "NaN or infinity");
    }

    [Fact]
    public async Task Search_ZeroQueryWithCosine_Returns400()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[0,0,0],"metric":"cosine"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "zero");
    }

    [Fact]
    public async Task Search_UnknownField_Returns400NamingTheField()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json("""{"query":[1,0,0],"topK":3}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'topK'");
    }

    [Fact]
    public async Task Search_UnknownCollection_Returns404()
    {
        using var client = server.CreateClient();

        using var response = await client.PostAsync("/collections/never-created/search", Http.Json("""{"query":[1,0,0]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "'never-created'");
    }

    [Fact]
    public async Task Search_WrongContentType_Returns415()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Bytes("""{"query":[1,0,0]}"""u8.ToArray(), "application/x-www-form-urlencoded"));

        await Problems.AssertAsync(response, HttpStatusCode.UnsupportedMediaType, "INVALID_ARGUMENT", "application/json");
    }

    [Fact]
    public async Task Search_EmptyBody_Returns400()
    {
        var (client, name) = await CreateSutAsync();

        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(string.Empty));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "empty");
    }

    private async Task<(HttpClient Client, string Name)> CreateSutAsync()
    {
        var client = server.CreateClient();
        var name = SharedServer.UniqueName("badsearch");
        await client.CreateCollectionAsync(name, [[1, 0, 0], [0, 1, 0]]);
        return (client, name);
    }
}
