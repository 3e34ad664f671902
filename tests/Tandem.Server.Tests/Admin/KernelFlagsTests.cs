using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Server.Collections;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Admin;

public sealed class KernelFlagsTests : IDisposable
{
    private readonly ServerFactory _factory = new();

    [Fact]
    public async Task SetKernel_BackendManaged_CollectionsMoveAndSearchRunsOnManaged()
    {
        var (client, admin) = await CreateSutAsync();

        var flags = await Support.Admin.SetKernelAsync(admin, "similarity.topk", """{"backend":"managed"}""");
        await MovedAsync();

        Assert.Equal("managed", flags.GetProperty("backend").GetString());
        Assert.Equal("managed", flags.GetProperty("serving").GetString());
        Assert.Equal("managed", await SearchBackendAsync(client));
        Assert.Equal("managed", (await (await client.GetAsync("/collections/flags")).ReadJsonAsync()).GetProperty("backend").GetString());
    }

    [Fact]
    public async Task SetKernel_AccelerationOffThenOn_RunsOnManagedThenNativeAgain()
    {
        var (client, admin) = await CreateSutAsync();

        var off = await Support.Admin.SetKernelAsync(admin, "similarity.topk", """{"acceleration":false}""");
        await MovedAsync();
        var whileOff = await SearchBackendAsync(client);
        var on = await Support.Admin.SetKernelAsync(admin, "similarity.topk", """{"acceleration":true}""");
        await MovedAsync();
        var whileOn = await SearchBackendAsync(client);

        Assert.False(off.GetProperty("acceleration").GetBoolean());
        Assert.Equal("managed", off.GetProperty("serving").GetString());
        Assert.Equal("managed", whileOff);
        Assert.True(on.GetProperty("acceleration").GetBoolean());
        Assert.Equal("native", on.GetProperty("serving").GetString());
        Assert.Equal("native", whileOn);
    }

    [Fact]
    public async Task SetKernel_PricingAccelerationOff_PricesOnManaged()
    {
        var (client, admin) = await CreateSutAsync();

        await Support.Admin.SetKernelAsync(admin, "montecarlo.european", """{"acceleration":false}""");
        using var response = await client.PostAsync("/pricing/european", Http.Json("""{"options":[{"spot":100,"strike":100,"rate":0.01,"volatility":0.2,"maturity":1,"kind":"call"}],"paths":1000}"""));

        Assert.Equal("managed", (await response.ReadJsonAsync()).GetProperty("backend").GetString());
        var listed = await (await admin.GetAsync("/admin/kernels")).ReadJsonAsync();
        Assert.Equal("managed", listed.EnumerateArray().Single(k => k.GetProperty("kernel").GetString() == "montecarlo.european").GetProperty("serving").GetString());
    }

    [Fact]
    public async Task SetKernel_UnknownKernel_Returns404ListingTheKernels()
    {
        var (_, admin) = await CreateSutAsync();

        using var response = await admin.PutAsync("/admin/kernels/fft.forward", Http.Json("""{"backend":"managed"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "'fft.forward'", "similarity.topk");
    }

    [Fact]
    public async Task SetKernel_UnknownBackend_Returns400ListingTheBackends()
    {
        var (_, admin) = await CreateSutAsync();

        using var response = await admin.PutAsync("/admin/kernels/similarity.topk", Http.Json("""{"backend":"gpu"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'backend'", "managed, native or remote", "'gpu'");
    }

    [Fact]
    public async Task SetKernel_RemoteWithoutAPool_Returns409SayingHowToGetOne()
    {
        var (_, admin) = await CreateSutAsync();

        using var response = await admin.PutAsync("/admin/kernels/similarity.topk", Http.Json("""{"backend":"remote"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.Conflict, "FAILED_PRECONDITION", "--workers");
    }

    [Fact]
    public async Task SetKernel_NoFlags_Returns400()
    {
        var (_, admin) = await CreateSutAsync();

        using var response = await admin.PutAsync("/admin/kernels/similarity.topk", Http.Json("{}"));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'backend'", "'acceleration'");
    }

    [Fact]
    public async Task SetKernel_UnknownField_Returns400()
    {
        var (_, admin) = await CreateSutAsync();

        using var response = await admin.PutAsync("/admin/kernels/similarity.topk", Http.Json("""{"backend":"managed","turbo":true}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'turbo'");
    }

    public void Dispose() => _factory.Dispose();

    private async Task<(HttpClient Client, HttpClient Admin)> CreateSutAsync()
    {
        var client = _factory.CreateClient();
        await client.CreateCollectionAsync("flags", Vectors.Random(50, 4, seed: 9));
        Assert.Equal("native", await SearchBackendAsync(client));
        return (client, _factory.CreateAdminClient());
    }

    private async Task MovedAsync() =>
        await _factory.Services.GetRequiredService<CollectionCatalog>().Moved.WaitAsync(TimeSpan.FromSeconds(30));

    private static async Task<string?> SearchBackendAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/collections/flags/search", Http.Json(JsonSerializer.Serialize(new { query = new[] { 1f, 0, 0, 0 }, k = 3 })));
        return (await response.ReadJsonAsync()).GetProperty("backend").GetString();
    }
}
