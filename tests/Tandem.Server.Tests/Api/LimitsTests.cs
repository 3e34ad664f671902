using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

/// <summary>Server:Limits: bodies over the configured sizes are refused with 413, declared or discovered while streaming.</summary>
public sealed class LimitsTests : IDisposable
{
    private const int Limit = 4096;
    private readonly ServerFactory _factory = new(new Dictionary<string, string?>
    {
        ["Server:Limits:MaxJsonBytes"] = $"{Limit}",
        ["Server:Limits:MaxUploadBytes"] = $"{Limit}",
        ["Server:Limits:MaxHashBytes"] = $"{Limit}",
    });

    [Fact]
    public async Task CreateFromJson_BodyOverMaxJsonBytes_Returns413NamingTheLimitWithoutRetryAfter()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/collections", Http.Collection("big", Vectors.Random(100, 16, seed: 1)));

        await Problems.AssertAsync(response, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", $"{Limit} bytes", "Server:Limits");
        // The same body is refused however long the client waits.
        Assert.Null(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task Search_ChunkedBodyOverMaxJsonBytes_Returns413()
    {
        using var client = _factory.CreateClient();
        await client.CreateCollectionAsync("small", [[1, 0]]);
        var content = new ChunkedJson("""{"query":[1,0],"k":1}""" + new string(' ', 2 * Limit));

        using var response = await client.PostAsync("/collections/small/search", content);

        await Problems.AssertAsync(response, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", $"{Limit} bytes");
    }

    [Fact]
    public async Task UploadRaw_BodyOverMaxUploadBytes_Returns413AndCreatesNothing()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PutAsync("/collections/bigraw?dimension=16", Http.Raw(Vectors.Random(100, 16, seed: 2)));

        await Problems.AssertAsync(response, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", $"{Limit} bytes");
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/collections/bigraw")).StatusCode);
    }

    [Fact]
    public async Task UploadRaw_ChunkedBodyOverMaxUploadBytes_Returns413()
    {
        using var client = _factory.CreateClient();
        var content = new GeneratedContent(Limit * 4L);
        content.Headers.ContentType = new("application/octet-stream");

        using var response = await client.PutAsync("/collections/bigchunked?dimension=4", content);

        await Problems.AssertAsync(response, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", $"{Limit} bytes");
    }

    [Fact]
    public async Task UploadNpy_BodyOverMaxUploadBytes_Returns413()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PutAsync("/collections/bignpy", Http.NpyFile(Npy.F4(Vectors.Random(100, 16, seed: 3))));

        await Problems.AssertAsync(response, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", $"{Limit} bytes");
    }

    [Fact]
    public async Task Hash_ChunkedBodyOverMaxHashBytes_Returns413()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/hash/blake3", new GeneratedContent(Limit * 4L));

        await Problems.AssertAsync(response, HttpStatusCode.RequestEntityTooLarge, "RESOURCE_EXHAUSTED", $"{Limit} bytes");
    }

    [Fact]
    public async Task Hash_BodyAtTheLimit_IsAccepted()
    {
        using var client = _factory.CreateClient();

        using var response = await client.PostAsync("/hash/blake3", Http.Bytes(new byte[Limit], "application/octet-stream"));

        Assert.Equal(Limit, (await response.ReadJsonAsync()).GetProperty("bytes").GetInt64());
    }

    public void Dispose() => _factory.Dispose();

    /// <summary>JSON sent without a Content-Length, so only the streamed count can catch its size.</summary>
    private sealed class ChunkedJson : HttpContent
    {
        private readonly byte[] _json;

        public ChunkedJson(string json)
        {
            _json = System.Text.Encoding.UTF8.GetBytes(json);
            Headers.ContentType = new("application/json");
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(_json).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
