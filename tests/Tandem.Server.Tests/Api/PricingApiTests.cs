using System.Text.Json;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class PricingApiTests(SharedServer server) : IClassFixture<SharedServer>
{
    private const long Paths = 200_000;

    [Fact]
    public async Task PriceEuropean_CallsAndPuts_LieWithinFourStandardErrorsOfBlackScholes()
    {
        using var client = CreateSut();
        var options = new[]
        {
            new Option(100, 105, 0.03, 0.2, 1, "call"),
            new Option(100, 95, 0.01, 0.35, 0.5, "put"),
            new Option(50, 50, 0.05, 0.1, 2, "call"),
        };

        var body = await PriceAsync(client, options, seed: 42);

        var prices = body.GetProperty("prices");
        var errors = body.GetProperty("standardErrors");
        Assert.Equal("native", body.GetProperty("backend").GetString());
        for (var i = 0; i < options.Length; i++)
        {
            var expected = BlackScholes(options[i]);
            var error = errors[i].GetDouble();
            Assert.InRange(error, 1e-6, 0.1);
            Assert.True(Math.Abs(prices[i].GetDouble() - expected) <= 4 * error, $"option {i}: price {prices[i].GetDouble()} is not within 4 × {error} of Black–Scholes {expected}");
        }
    }

    [Fact]
    public async Task PriceEuropean_SameSeed_GivesIdenticalPrices()
    {
        using var client = CreateSut();
        var options = new[] { new Option(100, 100, 0.02, 0.25, 1, "call") };

        var first = await PriceAsync(client, options, seed: 7);
        var second = await PriceAsync(client, options, seed: 7);
        var other = await PriceAsync(client, options, seed: 8);

        Assert.Equal(first.GetProperty("prices")[0].GetDouble(), second.GetProperty("prices")[0].GetDouble());
        Assert.Equal(first.GetProperty("standardErrors")[0].GetDouble(), second.GetProperty("standardErrors")[0].GetDouble());
        Assert.NotEqual(first.GetProperty("prices")[0].GetDouble(), other.GetProperty("prices")[0].GetDouble());
    }

    private HttpClient CreateSut() => server.CreateClient();

    private static async Task<JsonElement> PriceAsync(HttpClient client, Option[] options, ulong seed)
    {
        var json = JsonSerializer.Serialize(new { options, paths = Paths, seed }, JsonSerializerOptions.Web);
        using var response = await client.PostAsync("/pricing/european", Http.Json(json));
        return await response.ReadJsonAsync();
    }

    private static double BlackScholes(Option o)
    {
        var d1 = (Math.Log(o.Spot / o.Strike) + ((o.Rate + (o.Volatility * o.Volatility / 2)) * o.Maturity)) / (o.Volatility * Math.Sqrt(o.Maturity));
        var d2 = d1 - (o.Volatility * Math.Sqrt(o.Maturity));
        var discount = Math.Exp(-o.Rate * o.Maturity);
        return o.Kind == "call"
            ? (o.Spot * NormalCdf(d1)) - (o.Strike * discount * NormalCdf(d2))
            : (o.Strike * discount * NormalCdf(-d2)) - (o.Spot * NormalCdf(-d1));
    }

    // Φ(x) = erfc(−x/√2)/2, with the Chebyshev erfc of Numerical Recipes (relative error below 1.2e-7).
    private static double NormalCdf(double x)
    {
        var z = Math.Abs(x / Math.Sqrt(2));
        var t = 1 / (1 + (z / 2));
        double[] coefficients = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277];
        var polynomial = 0.0;
        for (var i = coefficients.Length - 1; i >= 0; i--)
        {
            polynomial = (polynomial * t) + coefficients[i];
        }

        var erfc = t * Math.Exp((-z * z) + polynomial);
        return x >= 0 ? 1 - (erfc / 2) : erfc / 2;
    }

    private sealed record Option(double Spot, double Strike, double Rate, double Volatility, double Maturity, string Kind);
}
