using Microsoft.Extensions.DependencyInjection;
using Tandem.Pricing;

namespace Tandem.Tests.Native;

/// <summary><see cref="TandemOptions.CallTimeout"/> reaching a native kernel that runs past it.</summary>
public sealed class CallTimeoutTests
{
    [Fact]
    public async Task PriceEuropeanAsync_NativeCallRunsPastCallTimeout_DeadlineExceededNamingTheOption()
    {
        // 10^9 paths are seconds of work; the deadline is a millisecond, so the kernel's next check stops it.
        await using var services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
            o.Resilience.MaxRetries = 0;
            o.CallTimeout = TimeSpan.FromMilliseconds(1);
        }).BuildServiceProvider();

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(new[] { new EuropeanOption(100, 100, 0.01, 0.2, 1, OptionKind.Call) }, new MonteCarloSettings { Paths = 1_000_000_000 }).AsTask());

        Assert.Equal(TandemStatusCode.DeadlineExceeded, error.Code);
        Assert.Contains("Tandem:CallTimeout", error.Message);
    }
}
