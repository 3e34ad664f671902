using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class KernelsBadInputTests(SharedServer server) : IClassFixture<SharedServer>
{
    private const string Call = """{"spot":100,"strike":100,"rate":0.01,"volatility":0.2,"maturity":1,"kind":"call"}""";

    [Fact]
    public async Task PriceEuropean_UnknownOptionKind_Returns400ListingTheKinds()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json("""{"options":[{"spot":100,"strike":100,"rate":0.01,"volatility":0.2,"maturity":1,"kind":"straddle"}]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "entry 0", "'straddle'", "call or put");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(1_000_000_001)]
    public async Task PriceEuropean_PathsOutOfRange_Returns400NamingTheRange(long paths)
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Call}}],"paths":{{paths}}}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'paths'", "1 to 1000000000");
    }

    [Fact]
    public async Task PriceEuropean_NoOptions_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json("""{"options":[]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'options'", "at least one");
    }

    [Fact]
    public async Task PriceEuropean_NegativeVolatility_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json("""{"options":[{"spot":100,"strike":100,"rate":0.01,"volatility":-0.2,"maturity":1,"kind":"put"}]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "volatility");
    }

    [Fact]
    public async Task PriceEuropean_NumberOverflowingDouble_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json("""{"options":[{"spot":1e400,"strike":100,"rate":0.01,"volatility":0.2,"maturity":1,"kind":"call"}]}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'spot'", "finite");
    }

    [Fact]
    public async Task PriceEuropean_UnknownField_Returns400NamingIt()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json($$"""{"options":[{{Call}}],"pathCount":10}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'pathCount'");
    }

    [Fact]
    public async Task PriceEuropean_MalformedJson_Returns400NamingThePosition()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Json("""{"options":[{"spot":100,}]"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "line 1", "byte");
    }

    [Fact]
    public async Task PriceEuropean_WrongContentType_Returns415()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/pricing/european", Http.Bytes(System.Text.Encoding.UTF8.GetBytes($$"""{"options":[{{Call}}]}"""), "text/json-ish"));

        await Problems.AssertAsync(response, HttpStatusCode.UnsupportedMediaType, "INVALID_ARGUMENT", "application/json");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1048577")]
    public async Task Hash_LengthOutOfRange_Returns400NamingTheRange(string length)
    {
        using var client = CreateSut();

        using var response = await client.PostAsync($"/hash/blake3?length={length}", Http.Bytes("abc"u8.ToArray(), "application/octet-stream"));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'length'", "1 to 1048576");
    }

    [Fact]
    public async Task Hash_NonNumericLength_Returns400()
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/hash/blake3?length=long", Http.Bytes("abc"u8.ToArray(), "application/octet-stream"));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "parameter 'length'", "integer", "'long'");
    }

    private HttpClient CreateSut() => server.CreateClient();
}
