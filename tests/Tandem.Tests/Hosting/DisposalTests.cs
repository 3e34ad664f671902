using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Pricing;
using Tandem.Similarity;

namespace Tandem.Tests.Hosting;

/// <summary>After the container is disposed, calls fail at once with a clear error; none hangs.</summary>
public sealed class DisposalTests
{
    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task Calls_AfterDisposal_FailedPreconditionAtOnce(BackendKind backend)
    {
        var services = new ServiceCollection().AddTandem(o => o.Backend = backend).BuildServiceProvider();
        var pricing = services.GetRequiredService<IOptionPricing>();
        var hashing = services.GetRequiredService<IBlake3Hashing>();
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("c", new float[] { 1, 2 }, 2);

        await services.DisposeAsync();

        var priced = await Assert.ThrowsAsync<TandemException>(() => pricing.PriceEuropeanAsync(new[] { new EuropeanOption(1, 1, 0, 0.1, 1, OptionKind.Call) }, new MonteCarloSettings()).AsTask());
        Assert.Equal(TandemStatusCode.FailedPrecondition, priced.Code);
        Assert.Equal(TandemStatusCode.FailedPrecondition, Assert.Throws<TandemException>(() => hashing.Hash("x"u8)).Code);
        var searched = await Assert.ThrowsAsync<TandemException>(() => search.TopKAsync("c", new float[] { 1, 0 }, 1).AsTask());
        Assert.Equal(TandemStatusCode.FailedPrecondition, searched.Code);
    }
}
