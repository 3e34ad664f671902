using Microsoft.Extensions.DependencyInjection;
using Tandem.Remote;
using Tandem.Remote.Internal;
using Tandem.Tests.Hashing;
using Tandem.Tests.Pricing;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// The Remote contract suites once more with the fast path off. The
/// fixture's workers are on Unix sockets, so the suites next to each
/// kernel (<c>RemoteTopKContractTests</c> and the others) run over the
/// fast path by default (<see cref="RemoteContractTransportTests"/>);
/// these keep every kernel's contract checked over gRPC too, the transport
/// TCP and cross-host workers use.
/// </summary>
internal static class GrpcRemote
{
    public static void Add(IServiceCollection services)
    {
        RemoteWorkersFixture.Current!.AddRemote(services);
        services.Configure<RemoteOptions>(o => o.FastPath = RemoteFastPath.Off);
    }
}

[Collection(RemoteWorkersCollection.Name)]
public sealed class GrpcTopKContractTests : TopKContractTests
{
    protected override BackendKind Backend => BackendKind.Remote;

    protected override void AddBackend(IServiceCollection services) => GrpcRemote.Add(services);
}

[Collection(RemoteWorkersCollection.Name)]
public sealed class GrpcMonteCarloContractTests : MonteCarloContractTests
{
    protected override BackendKind Backend => BackendKind.Remote;

    protected override void AddBackend(IServiceCollection services) => GrpcRemote.Add(services);
}

[Collection(RemoteWorkersCollection.Name)]
public sealed class GrpcBlake3ContractTests : Blake3ContractTests
{
    protected override BackendKind Backend => BackendKind.Remote;

    protected override void AddBackend(IServiceCollection services) => GrpcRemote.Add(services);
}

/// <summary>The contract suites run over the transport they are meant for.</summary>
[Collection(RemoteWorkersCollection.Name)]
public sealed class RemoteContractTransportTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StartAsync_FixtureEndpoints_FastPathUnlessTheGrpcSuitesTurnItOff(bool grpcSuite)
    {
        var services = new ServiceCollection().AddTandem(o => o.Backend = BackendKind.Remote);
        if (grpcSuite)
        {
            GrpcRemote.Add(services);
        }
        else
        {
            RemoteWorkersFixture.Current!.AddRemote(services);
        }

        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<RemoteClient>();
        await client.StartAsync();

        Assert.Equal(2, client.Pool.Workers.Count);
        Assert.All(client.Pool.Workers, w => Assert.Equal(!grpcSuite, w.UsesFastPath));
    }
}
