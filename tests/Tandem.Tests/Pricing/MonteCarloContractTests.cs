using Microsoft.Extensions.DependencyInjection;
using Tandem.Pricing;
using Tandem.Tests.Remote;

namespace Tandem.Tests.Pricing;

/// <summary>The <c>montecarlo.european</c> contract, run against every backend.</summary>
public abstract class MonteCarloContractTests : BackendContractTests<IOptionPricing>
{

    public static TheoryData<bool> Antithetic() => new() { false, true };

    [Theory]
    [MemberData(nameof(Antithetic))]
    public async Task PriceEuropeanAsync_GridOfContracts_WithinFourStandardErrorsOfBlackScholes(bool antithetic)
    {
        var options = new List<EuropeanOption>();
        foreach (var strike in new[] { 80.0, 100.0, 125.0 })
        {
            foreach (var volatility in new[] { 0.1, 0.3, 0.6 })
            {
                foreach (var maturity in new[] { 0.25, 1.0, 3.0 })
                {
                    options.Add(new EuropeanOption(100, strike, 0.03, volatility, maturity, OptionKind.Call));
                    options.Add(new EuropeanOption(100, strike, 0.03, volatility, maturity, OptionKind.Put));
                }
            }
        }

        var result = await Sut.PriceEuropeanAsync(options.ToArray(), new MonteCarloSettings { Paths = 100_000, Seed = 42, Antithetic = antithetic });

        Assert.Equal(Backend, result.Backend);
        for (var i = 0; i < options.Count; i++)
        {
            var exact = BlackScholes.Price(options[i]);
            Assert.True(result.StandardErrors[i] >= 0);
            // Deep out of the money no path may pay: allow a hundredth of a cent.
            Assert.True(Math.Abs(result.Prices[i] - exact) <= (4 * result.StandardErrors[i]) + 1e-4, $"{options[i]}: {result.Prices[i]} vs {exact} (se {result.StandardErrors[i]})");
        }
    }

    [Fact]
    public async Task PriceEuropeanAsync_SameRequestTwice_BitwiseEqual()
    {
        var options = new[] { new EuropeanOption(100, 105, 0.02, 0.25, 0.5, OptionKind.Call), new EuropeanOption(50, 45, 0.01, 0.4, 2, OptionKind.Put) };
        var settings = new MonteCarloSettings { Paths = 30_001, Seed = 9 };

        var first = await Sut.PriceEuropeanAsync(options, settings);
        var second = await Sut.PriceEuropeanAsync(options, settings);

        Assert.Equal(first.Prices, second.Prices);
        Assert.Equal(first.StandardErrors, second.StandardErrors);
    }

    [Fact]
    public async Task PriceEuropeanAsync_RowInAnotherRequest_SameStreamForSameIndex()
    {
        var a = new EuropeanOption(100, 100, 0.01, 0.2, 1, OptionKind.Call);
        var b = new EuropeanOption(90, 100, 0.02, 0.4, 2, OptionKind.Put);
        var settings = new MonteCarloSettings { Paths = 20_000, Seed = 5 };

        var alone = await Sut.PriceEuropeanAsync(new[] { a }, settings);
        var withOthers = await Sut.PriceEuropeanAsync(new[] { a, b, b }, settings);

        // Row 0 of both requests is keyed (seed, 0, path): the same numbers.
        Assert.Equal(alone.Prices[0], withOthers.Prices[0]);
    }

    [Theory]
    [InlineData(0, double.NaN, "row 1 field 'spot'")]
    [InlineData(1, -1.0, "row 1 field 'strike'")]
    [InlineData(2, double.PositiveInfinity, "row 1 field 'rate'")]
    [InlineData(3, -0.1, "row 1 field 'volatility'")]
    [InlineData(4, double.NegativeInfinity, "row 1 field 'maturity'")]
    public async Task PriceEuropeanAsync_BadField_InvalidArgumentNamingRowAndField(int field, double value, string expected)
    {
        var good = new EuropeanOption(100, 100, 0.01, 0.2, 1, OptionKind.Call);
        var bad = field switch
        {
            0 => good with { Spot = value },
            1 => good with { Strike = value },
            2 => good with { Rate = value },
            3 => good with { Volatility = value },
            _ => good with { Maturity = value },
        };

        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.PriceEuropeanAsync(new[] { good, bad }, new MonteCarloSettings()).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains(expected, error.Message);
        Assert.Equal("montecarlo.european", error.Kernel);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-5L)]
    [InlineData(1_000_000_001L)]
    public async Task PriceEuropeanAsync_PathsOutOfRange_InvalidArgument(long paths)
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.PriceEuropeanAsync(new[] { new EuropeanOption(1, 1, 0, 0.1, 1, OptionKind.Call) }, new MonteCarloSettings { Paths = paths }).AsTask());
        Assert.Contains("'paths'", error.Message);
    }

    [Fact]
    public async Task PriceEuropeanAsync_UndefinedKindOrNoOptions_InvalidArgument()
    {
        var kind = await Assert.ThrowsAsync<TandemException>(() => Sut.PriceEuropeanAsync(new[] { new EuropeanOption(1, 1, 0, 0.1, 1, (OptionKind)3) }, new MonteCarloSettings()).AsTask());
        Assert.Contains("field 'call'", kind.Message);
        var empty = await Assert.ThrowsAsync<TandemException>(() => Sut.PriceEuropeanAsync(ReadOnlyMemory<EuropeanOption>.Empty, new MonteCarloSettings()).AsTask());
        Assert.Contains("no rows", empty.Message);
    }

    [Fact]
    public async Task PriceEuropeanAsync_CancelledDuringLongRun_CompletesPromptlyWithCancelled()
    {
        using var cts = new CancellationTokenSource();
        var call = Sut.PriceEuropeanAsync(new[] { new EuropeanOption(100, 100, 0.01, 0.2, 1, OptionKind.Call) }, new MonteCarloSettings { Paths = 1_000_000_000 }, cts.Token).AsTask();
        cts.Cancel();

        var error = await Assert.ThrowsAsync<TandemException>(() => call);

        Assert.Equal(TandemStatusCode.Cancelled, error.Code);
    }

    [Fact]
    public async Task PriceEuropeanAsync_ZeroVolatility_DiscountedForwardPayoffExactly()
    {
        var result = await Sut.PriceEuropeanAsync(new[] { new EuropeanOption(100, 90, 0.05, 0, 1, OptionKind.Call) }, new MonteCarloSettings { Paths = 1000 });

        Assert.Equal(((100 * Math.Exp(0.05)) - 90) * Math.Exp(-0.05), result.Prices[0], 1e-9);
        // Every path pays the same; only rounding in the mean is left.
        Assert.True(result.StandardErrors[0] < 1e-12);
    }
}

public sealed class ManagedMonteCarloContractTests : MonteCarloContractTests
{
    protected override BackendKind Backend => BackendKind.Managed;
}

public sealed class NativeMonteCarloContractTests : MonteCarloContractTests
{
    protected override BackendKind Backend => BackendKind.Native;
}

/// <summary>Managed and Native draw the same streams: their prices agree to 1e-9 relative.</summary>
public sealed class MonteCarloCrossBackendTests
{
    [Fact]
    public async Task PriceEuropeanAsync_ManagedAndNative_AgreeWithinOneInABillion()
    {
        var options = Enumerable.Range(0, 16).Select(i => new EuropeanOption(80 + (3 * i), 100, 0.02, 0.1 + (0.03 * i), 0.5 + (0.2 * i), i % 2 == 0 ? OptionKind.Call : OptionKind.Put)).ToArray();
        foreach (var antithetic in new[] { false, true })
        {
            var settings = new MonteCarloSettings { Paths = 250_001, Seed = 1234567890123, Antithetic = antithetic };
            var managed = await Price(BackendKind.Managed, options, settings);
            var native = await Price(BackendKind.Native, options, settings);
            for (var i = 0; i < options.Length; i++)
            {
                Assert.True(Math.Abs(managed.Prices[i] - native.Prices[i]) <= 1e-9 * Math.Abs(native.Prices[i]), $"row {i}: {managed.Prices[i]} vs {native.Prices[i]}");
                Assert.True(Math.Abs(managed.StandardErrors[i] - native.StandardErrors[i]) <= 1e-9 * Math.Abs(native.StandardErrors[i]), $"row {i} se");
            }
        }
    }

    private static async Task<OptionPrices> Price(BackendKind backend, EuropeanOption[] options, MonteCarloSettings settings)
    {
        await using var services = new ServiceCollection().AddTandem(o => { o.Backend = backend; o.FallbackToManaged = false; }).BuildServiceProvider();
        return await services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(options, settings);
    }
}

/// <summary>The closed form the Monte Carlo prices are checked against.</summary>
internal static class BlackScholes
{
    public static double Price(EuropeanOption o)
    {
        var sqrtT = Math.Sqrt(o.Maturity);
        var d1 = (Math.Log(o.Spot / o.Strike) + ((o.Rate + (0.5 * o.Volatility * o.Volatility)) * o.Maturity)) / (o.Volatility * sqrtT);
        var d2 = d1 - (o.Volatility * sqrtT);
        var discountedStrike = o.Strike * Math.Exp(-o.Rate * o.Maturity);
        return o.Kind == OptionKind.Call
            ? (o.Spot * NormalCdf(d1)) - (discountedStrike * NormalCdf(d2))
            : (discountedStrike * NormalCdf(-d2)) - (o.Spot * NormalCdf(-d1));
    }

    /// <summary>Φ(x) via Numerical Recipes' erfcc (|error| &lt; 1.2e-7).</summary>
    private static double NormalCdf(double x)
    {
        var z = Math.Abs(x) / Math.Sqrt(2);
        var t = 1 / (1 + (0.5 * z));
        var poly = (-z * z) - 1.26551223 + (t * (1.00002368 + (t * (0.37409196 + (t * (0.09678418 + (t * (-0.18628806 + (t * (0.27886807 + (t * (-1.13520398 + (t * (1.48851587 + (t * (-0.82215223 + (t * 0.17087277)))))))))))))))));
        var erfc = t * Math.Exp(poly);
        return x >= 0 ? 1 - (0.5 * erfc) : 0.5 * erfc;
    }
}

[Collection(RemoteWorkersCollection.Name)]
public sealed class RemoteMonteCarloContractTests : MonteCarloContractTests
{
    protected override BackendKind Backend => BackendKind.Remote;

    protected override void AddBackend(IServiceCollection services) => RemoteWorkersFixture.Current!.AddRemote(services);
}
