using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Remote;
using Tandem.Remote.Internal;
using Tandem.Similarity;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>A rolling upgrade started by configuration rather than the admin API.</summary>
public sealed class ConfiguredUpgradeTests
{
    private const int Dim = 8;

    [Fact]
    public async Task BuildIdChangedInConfiguration_EveryWorkerReplacedAndCollectionsKept()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Remote:WorkerPath"] = WorkerBinary.Path,
            ["Remote:WorkerCount"] = "2",
            ["Remote:BuildId"] = "v1",
            ["Remote:DrainGrace"] = "00:00:05",
        }).Build();
        await using var services = CreateSut(configuration);
        var admin = services.GetRequiredService<IWorkerPoolAdmin>();
        var search = services.GetRequiredService<ISimilaritySearch>();
        await admin.StartAsync();
        await search.CreateCollectionAsync("c", TestData.Integers(50, Dim, seed: 3), Dim);
        var query = TestData.Integers(2, Dim, seed: 4);
        var expected = await search.TopKAsync("c", query, 5);
        var before = admin.Workers;
        Assert.All(before, w => Assert.EndsWith("+v1", w.Version));

        configuration["Remote:BuildId"] = "v2";
        configuration.Reload();
        await services.GetRequiredService<RemoteClient>().ConfiguredUpgrade;

        var after = admin.Workers;
        Assert.Equal(2, after.Count);
        Assert.All(after, w => Assert.EndsWith("+v2", w.Version));
        Assert.All(after, w => Assert.DoesNotContain(before, b => b.InstanceId == w.InstanceId));
        Assert.Equal(expected.Ids, (await search.TopKAsync("c", query, 5)).Ids);
    }

    [Fact]
    public async Task UnrelatedOptionChanged_NoUpgrade()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Remote:WorkerPath"] = WorkerBinary.Path,
            ["Remote:WorkerCount"] = "1",
        }).Build();
        await using var services = CreateSut(configuration);
        var admin = services.GetRequiredService<IWorkerPoolAdmin>();
        await admin.StartAsync();
        var before = admin.Workers.Single().InstanceId;

        configuration["Remote:RetriesOnOtherWorkers"] = "1";
        configuration.Reload();

        Assert.True(services.GetRequiredService<RemoteClient>().ConfiguredUpgrade.IsCompleted);
        Assert.Equal(before, admin.Workers.Single().InstanceId);
    }

    private static ServiceProvider CreateSut(IConfiguration configuration) => new ServiceCollection()
        .AddTandem(o =>
        {
            o.Backend = BackendKind.Remote;
            o.FallbackToManaged = false;
        })
        .AddTandemRemote(configuration.GetSection("Remote"))
        .BuildServiceProvider();
}
