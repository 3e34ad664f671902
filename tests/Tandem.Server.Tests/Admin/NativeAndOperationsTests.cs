using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Admin;

public sealed class NativeAndOperationsTests : IDisposable
{
    private readonly ServerFactory _factory = new();

    [Fact]
    public async Task Native_AtStart_DescribesGenerationOneAndItsAbi()
    {
        using var admin = CreateSut();

        var native = await (await admin.GetAsync("/admin/native")).ReadJsonAsync();

        Assert.Equal(1, native.GetProperty("generation").GetInt64());
        Assert.EndsWith("libtandem.so", native.GetProperty("path").GetString());
        Assert.Matches(@"^\d+\.\d+$", native.GetProperty("abi").GetString());
        Assert.Equal(JsonValueKindNull, native.GetProperty("error").ValueKind);
    }

    [Fact]
    public async Task HotSwap_CurrentLibrary_OperationSucceedsAndGenerationBecomesTwo()
    {
        using var admin = CreateSut();
        using var client = _factory.CreateClient();
        await client.CreateCollectionAsync("swapped", [[1, 0], [0, 1]]);

        using var accepted = await admin.PostAsync("/admin/native/hot-swap", Http.Json("{}"));
        var operation = await Support.Admin.CompleteAsync(admin, accepted);

        Assert.Equal("hot-swap", operation.GetProperty("kind").GetString());
        Assert.Equal("succeeded", operation.GetProperty("state").GetString());
        Assert.Contains("generation 2", operation.GetProperty("message").GetString());
        Assert.Equal(2, (await (await admin.GetAsync("/admin/native")).ReadJsonAsync()).GetProperty("generation").GetInt64());
        var search = await (await client.PostAsync("/collections/swapped/search", Http.Json("""{"query":[0,1],"k":1}"""))).ReadJsonAsync();
        Assert.Equal("native", search.GetProperty("backend").GetString());
        Assert.Equal(1, search.GetProperty("results")[0].GetProperty("ids")[0].GetInt64());
    }

    [Fact]
    public async Task HotSwap_NoBody_ReloadsTheCurrentLibrary()
    {
        using var admin = CreateSut();

        using var accepted = await admin.PostAsync("/admin/native/hot-swap", content: null);
        var operation = await Support.Admin.CompleteAsync(admin, accepted);

        Assert.Equal("succeeded", operation.GetProperty("state").GetString());
    }

    [Fact]
    public async Task HotSwap_MissingFile_Returns400NamingIt()
    {
        using var admin = CreateSut();

        using var response = await admin.PostAsync("/admin/native/hot-swap", Http.Json("""{"libraryPath":"/nonexistent/libtandem.so"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'libraryPath'", "/nonexistent/libtandem.so", "does not exist");
        Assert.Equal(1, (await (await admin.GetAsync("/admin/native")).ReadJsonAsync()).GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Operations_AfterAHotSwap_ListAndFindIt()
    {
        using var admin = CreateSut();
        using var accepted = await admin.PostAsync("/admin/native/hot-swap", Http.Json("{}"));
        var operation = await Support.Admin.CompleteAsync(admin, accepted);
        var id = operation.GetProperty("id").GetString();

        var list = await (await admin.GetAsync("/admin/operations")).ReadJsonAsync();
        var found = await (await admin.GetAsync($"/admin/operations/{id}")).ReadJsonAsync();

        Assert.Contains(list.EnumerateArray(), o => o.GetProperty("id").GetString() == id);
        Assert.Equal("hot-swap", found.GetProperty("kind").GetString());
        Assert.NotEqual(JsonValueKindNull, found.GetProperty("endedAt").ValueKind);
    }

    [Fact]
    public async Task Operations_UnknownId_Returns404()
    {
        using var admin = CreateSut();

        using var response = await admin.GetAsync("/admin/operations/op-999");

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "'op-999'", "GET /admin/operations");
    }

    [Fact]
    public async Task Workers_NoPool_ListsNoneAndRefusesRestartAndUpgradeWith409()
    {
        using var admin = CreateSut();

        var workers = await (await admin.GetAsync("/admin/workers")).ReadJsonAsync();
        using var restart = await admin.PostAsync("/admin/workers/w0/restart", content: null);
        using var upgrade = await admin.PostAsync("/admin/workers/upgrade", content: null);

        Assert.Equal(0, workers.GetArrayLength());
        await Problems.AssertAsync(restart, HttpStatusCode.Conflict, "FAILED_PRECONDITION", "--workers");
        await Problems.AssertAsync(upgrade, HttpStatusCode.Conflict, "FAILED_PRECONDITION", "--workers");
    }

    [Fact]
    public async Task Load_PutThenGet_ReturnsTheNewSettings()
    {
        using var admin = CreateSut();

        var set = await (await admin.PutAsync("/admin/load", Http.Json("""{"running":false,"concurrency":3,"targetPerSecond":25}"""))).ReadJsonAsync();
        var got = await (await admin.GetAsync("/admin/load")).ReadJsonAsync();

        foreach (var view in new[] { set, got })
        {
            Assert.False(view.GetProperty("running").GetBoolean());
            Assert.Equal(3, view.GetProperty("concurrency").GetInt32());
            Assert.Equal(25, view.GetProperty("targetPerSecond").GetInt32());
        }
    }

    [Theory]
    [InlineData("""{"concurrency":0}""", "'concurrency'", "1 to 64")]
    [InlineData("""{"concurrency":65}""", "'concurrency'", "1 to 64")]
    [InlineData("""{"targetPerSecond":0}""", "'targetPerSecond'", "1 to 10000")]
    [InlineData("""{"targetPerSecond":10001}""", "'targetPerSecond'", "1 to 10000")]
    [InlineData("""{"running":"yes"}""", "$.running", "expected type")]
    [InlineData("""{"speed":3}""", "'speed'", "not one this endpoint takes")]
    public async Task Load_InvalidSettings_Returns400NamingTheField(string json, string field, string rule)
    {
        using var admin = CreateSut();

        using var response = await admin.PutAsync("/admin/load", Http.Json(json));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", field, rule);
    }

    public void Dispose() => _factory.Dispose();

    private const System.Text.Json.JsonValueKind JsonValueKindNull = System.Text.Json.JsonValueKind.Null;

    private HttpClient CreateSut() => _factory.CreateAdminClient();
}
