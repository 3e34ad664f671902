using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class CollectionsBadInputTests(SharedServer server) : IClassFixture<SharedServer>
{
    [Fact]
    public async Task CreateFromJson_MalformedJson_Returns400NamingThePosition()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("{\"name\":\"m\",\n \"vectors\":[[1,2],]}"));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "not valid JSON", "$.vectors[1]", "line 2, byte 19", "trailing comma");
    }

    [Fact]
    public async Task CreateFromJson_WrongContentType_Returns415NamingTheExpectedType()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Bytes("""{"name":"x","vectors":[[1]]}"""u8.ToArray(), "text/plain"));

        await Problems.AssertAsync(response, HttpStatusCode.UnsupportedMediaType, "INVALID_ARGUMENT", "application/json", "text/plain");
    }

    [Fact]
    public async Task CreateFromJson_NoContentType_Returns415()
    {
        using var client = CreateSut();
        var content = new ByteArrayContent("""{"name":"x","vectors":[[1]]}"""u8.ToArray());

        using var response = await client.PostAsync("/collections", content);

        await Problems.AssertAsync(response, HttpStatusCode.UnsupportedMediaType, "INVALID_ARGUMENT", "application/json", "(none)");
    }

    [Fact]
    public async Task CreateFromJson_EmptyBody_Returns400SayingItIsEmpty()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json(string.Empty));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "empty", "for example");
    }

    [Fact]
    public async Task CreateFromJson_JsonNull_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("null"));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "null", "for example");
    }

    [Fact]
    public async Task CreateFromJson_UnknownField_Returns400NamingTheField()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("""{"name":"u","vectors":[[1]],"colour":"red"}"""));

        var problem = await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'colour'", "not one this endpoint takes");
        Assert.DoesNotContain("Tandem.Server", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task CreateFromJson_MissingName_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("""{"vectors":[[1]]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'name'", "required");
    }

    [Fact]
    public async Task CreateFromJson_NoVectors_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("""{"name":"novectors","vectors":[]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'vectors'", "at least one");
    }

    [Fact]
    public async Task CreateFromJson_RaggedRows_Returns400NamingTheRow()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("""{"name":"ragged","vectors":[[1,2],[3,4],[5]]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "row 2", "1 values", "same dimension");
    }

    [Fact]
    public async Task CreateFromJson_NumberOverflowingFloat_Returns400()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("overflow");

        using var response = await client.PostAsync("/collections", Http.Json($$"""{"name":"{{name}}","vectors":[[1,2],[1e39,0]]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "vectors", "row 1", "NaN or infinity");
        await AssertNotListedAsync(client, name);
    }

    [Fact]
    public async Task CreateFromJson_StringWhereNumberExpected_Returns400NamingThePath()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Json("""{"name":"s","vectors":[[1,"two"]]}"""));

        var problem = await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "$.vectors[0][1]", "not a number");
        Assert.DoesNotContain("System.", problem.GetProperty("detail").GetString());
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("slash/inside")]
    [InlineData("ünïcode")]
    [InlineData("")]
    public async Task CreateFromJson_BadName_Returns400NamingTheRule(string name)
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Collection(name, [[1, 2]]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "collection name", "letters, digits");
    }

    [Fact]
    public async Task CreateFromJson_NameTooLong_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/collections", Http.Collection(new string('a', 129), [[1, 2]]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "1 to 128 characters");
    }

    [Fact]
    public async Task CreateFromRaw_BadNameInPath_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PutAsync("/collections/bad%20name?dimension=2", Http.Raw([[1, 2]]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "collection name", "'bad name'");
    }

    [Fact]
    public async Task CreateFromJson_DuplicateName_Returns409AndKeepsTheFirst()
    {
        using var client = CreateSut();
        var name = SharedServer.UniqueName("duplicate");
        await client.CreateCollectionAsync(name, [[1, 2]]);

        using var json = await client.PostAsync("/collections", Http.Collection(name, [[1, 2, 3]]));
        using var raw = await client.PutAsync($"/collections/{name}?dimension=3", Http.Raw([[1, 2, 3]]));

        await Problems.AssertAsync(json, HttpStatusCode.Conflict, "ALREADY_EXISTS", name, "already exists");
        await Problems.AssertAsync(raw, HttpStatusCode.Conflict, "ALREADY_EXISTS", name);
        var described = await (await client.GetAsync($"/collections/{name}")).ReadJsonAsync();
        Assert.Equal(2, described.GetProperty("dimension").GetInt32());
    }

    [Fact]
    public async Task Describe_UnknownCollection_Returns404()
    {
        using var client = CreateSut();

        using var response = await client.GetAsync("/collections/never-created");

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "'never-created'");
    }

    [Fact]
    public async Task Drop_UnknownCollection_Returns404()
    {
        using var client = CreateSut();

        using var response = await client.DeleteAsync("/collections/never-created");

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "'never-created'");
    }

    private HttpClient CreateSut() => server.CreateClient();

    private static async Task AssertNotListedAsync(HttpClient client, string name)
    {
        var list = await (await client.GetAsync("/collections")).ReadJsonAsync();
        Assert.DoesNotContain(list.EnumerateArray(), c => c.GetProperty("name").GetString() == name);
    }
}
