using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Pricing;

namespace Tandem.Tests.Dispatch;

/// <summary>Options changed while calls flow apply to new calls and fail none in flight.</summary>
public sealed class OptionsReloadTests
{
    [Fact]
    public async Task PriceEuropeanAsync_OptionsReloadedMidTraffic_EveryCallSucceedsAndNewCallsUseNewBackend()
    {
        var configuration = new ConfigurationManager();
        configuration["Tandem:Backend"] = "Managed";
        configuration["Tandem:Batching:MaxBatchRows"] = "8";
        using var services = new ServiceCollection().AddTandem(configuration.GetSection("Tandem")).BuildServiceProvider();
        var pricing = services.GetRequiredService<IOptionPricing>();
        var option = new[] { new EuropeanOption(100, 100, 0.01, 0.2, 1, OptionKind.Call) };
        var settings = new MonteCarloSettings { Paths = 20_000, Seed = 3 };

        var before = Enumerable.Range(0, 40).Select(_ => pricing.PriceEuropeanAsync(option, settings).AsTask()).ToArray();
        configuration["Tandem:Backend"] = "Native";
        configuration["Tandem:Batching:MaxBatchRows"] = "2";
        configuration["Tandem:Batching:Enabled"] = "false";
        ((IConfigurationRoot)configuration).Reload();
        var after = Enumerable.Range(0, 40).Select(_ => pricing.PriceEuropeanAsync(option, settings).AsTask()).ToArray();

        var results = await Task.WhenAll(before.Concat(after));
        Assert.All(results, r => Assert.True(r.Prices[0] > 0));
        Assert.All(after.Select(t => t.Result), r => Assert.Equal(BackendKind.Native, r.Backend));
        // Same seed and streams: the backends agree to 1e-9 whichever ran.
        Assert.All(results, r => Assert.Equal(results[0].Prices[0], r.Prices[0], 1e-9 * results[0].Prices[0]));
    }
}
