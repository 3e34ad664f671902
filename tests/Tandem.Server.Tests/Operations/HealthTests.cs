using System.Net;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Server.Tests.Support;
using Tandem.Similarity;

namespace Tandem.Server.Tests.Operations;

public sealed class HealthTests
{
    [Fact]
    public async Task Healthz_Running_Returns200()
    {
        await using var factory = new ServerFactory();
        using var client = factory.CreateClient();

        var health = await (await client.GetAsync("/healthz")).ReadJsonAsync();

        Assert.Equal("Healthy", health.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Readyz_DemoStillLoading_Returns503ThenReadyWithPerKernelData()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var baseFactory = new ServerFactory(new Dictionary<string, string?>
        {
            ["Server:Demo:Enabled"] = "true",
            ["Server:Demo:Load"] = "false",
            ["Server:Demo:Vectors"] = "100",
            ["Server:Demo:Dimension"] = "8",
        });
        await using var factory = baseFactory.WithWebHostBuilder(builder => builder.ConfigureTestServices(services => GateCollections(services, gate.Task)));
        using var client = factory.CreateClient();

        using var starting = await client.GetAsync("/readyz");
        var startingBody = await starting.Content.ReadAsStringAsync();
        gate.SetResult();
        // The startup work's own completion signal, instead of polling /readyz.
        await factory.Services.GetRequiredService<Tandem.Server.Hosting.StartupState>().Done.WaitAsync(TimeSpan.FromSeconds(30));
        using var readyResponse = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, readyResponse.StatusCode);
        var ready = await readyResponse.ReadJsonAsync();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, starting.StatusCode);
        Assert.Contains("starting", startingBody);
        var data = ready.GetProperty("entries").GetProperty("tandem").GetProperty("data");
        Assert.Equal("native", data.GetProperty("similarity.topk").GetString());
        Assert.Equal("native", data.GetProperty("montecarlo.european").GetString());
        Assert.Equal("native", data.GetProperty("hash.blake3").GetString());
        Assert.Equal(1, data.GetProperty("nativeGeneration").GetInt64());
        Assert.Equal(100, (await (await client.GetAsync("/collections/demo")).ReadJsonAsync()).GetProperty("count").GetInt32());
    }

    /// <summary>Holds every collection creation (the demo's included) until <paramref name="gate"/> completes.</summary>
    private static void GateCollections(IServiceCollection services, Task gate)
    {
        var original = services.Last(d => d.ServiceType == typeof(ISimilaritySearch));
        services.Remove(original);
        services.AddSingleton<ISimilaritySearch>(sp => new GatedSearch((ISimilaritySearch)original.ImplementationFactory!(sp), gate));
    }

    private sealed class GatedSearch(ISimilaritySearch inner, Task gate) : ISimilaritySearch
    {
        public IReadOnlyList<SimilarityCollectionInfo> Collections => inner.Collections;

        public async ValueTask<SimilarityCollectionInfo> CreateCollectionAsync(string name, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids = default, CancellationToken cancellationToken = default)
        {
            await gate.WaitAsync(cancellationToken);
            return await inner.CreateCollectionAsync(name, vectors, dimension, ids, cancellationToken);
        }

        public async ValueTask<SimilarityCollectionInfo> StoreCollectionAsync(string name, string storedName, long version, ReadOnlyMemory<float> vectors, int dimension, ReadOnlyMemory<long> ids = default, CancellationToken cancellationToken = default)
        {
            await gate.WaitAsync(cancellationToken);
            return await inner.StoreCollectionAsync(name, storedName, version, vectors, dimension, ids, cancellationToken);
        }

        public async ValueTask<SimilarityCollectionInfo> LoadCollectionAsync(string name, string storedName, long version = 0, CancellationToken cancellationToken = default)
        {
            await gate.WaitAsync(cancellationToken);
            return await inner.LoadCollectionAsync(name, storedName, version, cancellationToken);
        }

        public bool DropCollection(string name) => inner.DropCollection(name);

        public ValueTask<TopKResult> TopKAsync(string collection, ReadOnlyMemory<float> queries, int k, SimilarityMetric metric = SimilarityMetric.Dot, CancellationToken cancellationToken = default) =>
            inner.TopKAsync(collection, queries, k, metric, cancellationToken);
    }
}
