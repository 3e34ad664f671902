using System.Text;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class HashApiTests(SharedServer server) : IClassFixture<SharedServer>
{
    // The BLAKE3 reference digests of the empty input and of "abc".
    private const string EmptyDigest = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
    private const string AbcDigest = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";

    [Theory]
    [InlineData("", EmptyDigest)]
    [InlineData("abc", AbcDigest)]
    public async Task Hash_KnownInput_ReturnsReferenceDigest(string input, string digest)
    {
        using var client = CreateSut();

        using var response = await client.PostAsync("/hash/blake3", Http.Bytes(Encoding.ASCII.GetBytes(input), "application/octet-stream"));

        var body = await response.ReadJsonAsync();
        Assert.Equal("blake3", body.GetProperty("algorithm").GetString());
        Assert.Equal(digest, body.GetProperty("digest").GetString());
        Assert.Equal(input.Length, body.GetProperty("bytes").GetInt64());
        Assert.Equal(32, body.GetProperty("outputLength").GetInt32());
    }

    [Fact]
    public async Task Hash_Length64_ReturnsExtendedOutputLikeB3sum()
    {
        using var client = CreateSut();
        var content = new GeneratedContent(10_000);

        using var response = await client.PostAsync("/hash/blake3?length=64", content);

        var body = await response.ReadJsonAsync();
        Assert.Equal(64, body.GetProperty("outputLength").GetInt32());
        Assert.Equal(await content.B3sumAsync(64), body.GetProperty("digest").GetString());
    }

    [Fact]
    public async Task Hash_ChunkedMultiMebibyteBody_MatchesB3sumOfTheSameBytes()
    {
        using var client = CreateSut();
        var content = new GeneratedContent((24L << 20) + 12345);

        using var response = await client.PostAsync("/hash/blake3", content);

        var body = await response.ReadJsonAsync();
        Assert.Equal(content.Length, body.GetProperty("bytes").GetInt64());
        Assert.Equal(await content.B3sumAsync(), body.GetProperty("digest").GetString());
    }

    private HttpClient CreateSut() => server.CreateClient();
}
