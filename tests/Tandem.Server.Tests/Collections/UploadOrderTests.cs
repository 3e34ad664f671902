using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Server.Api;
using Tandem.Server.Collections;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Collections;

/// <summary>PUT /collections/{name}: everything the URL and headers decide is refused before the body is read.</summary>
public sealed class UploadOrderTests(SharedServer server) : IClassFixture<SharedServer>
{
    [Theory]
    [InlineData("bad name")]
    [InlineData("slash/inside")]
    [InlineData("")]
    public async Task Upload_InvalidName_Refused400WithoutReadingTheBody(string name)
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => UploadAsync(name, 4, "application/octet-stream", 16));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("collection name must be", error.Message);
    }

    [Fact]
    public async Task Upload_UnsupportedContentType_Refused415WithoutReadingTheBody()
    {
        var error = await Assert.ThrowsAsync<HttpProblemException>(() => UploadAsync("fine", 4, "text/csv", 16));

        Assert.Equal(415, error.Status);
    }

    [Theory]
    [InlineData(null, "is required")]
    [InlineData(0, "positive")]
    [InlineData(-2, "positive")]
    public async Task UploadRaw_MissingOrNonPositiveDimension_Refused400WithoutReadingTheBody(int? dimension, string fragment)
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => UploadAsync("fine", dimension, "application/octet-stream", 16));

        Assert.Contains("'dimension'", error.Message);
        Assert.Contains(fragment, error.Message);
    }

    [Fact]
    public async Task UploadRaw_PartialRowDeclared_Refused400WithoutReadingTheBody()
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => UploadAsync(SharedServer.UniqueName("rows"), 4, "application/octet-stream", 18));

        Assert.Contains("not a whole number of rows", error.Message);
    }

    [Fact]
    public async Task Upload_ExistingName_Refused409WithoutReadingTheBody()
    {
        var name = SharedServer.UniqueName("taken");
        using var client = server.CreateClient();
        await client.CreateCollectionAsync(name, [[1, 2]]);

        var error = await Assert.ThrowsAsync<TandemException>(() => UploadAsync(name, 2, "application/octet-stream", 8));

        Assert.Equal(TandemStatusCode.AlreadyExists, error.Code);
    }

    [Fact]
    public async Task Upload_DeclaredOverMaxUploadBytes_Refused413WithoutReadingTheBody()
    {
        var error = await Assert.ThrowsAsync<HttpProblemException>(() => UploadAsync(SharedServer.UniqueName("big"), 4, "application/octet-stream", 2L << 30));

        Assert.Equal(413, error.Status);
        Assert.Contains($"{1L << 30} bytes", error.Message);
    }

    [Fact]
    public async Task Upload_DeclaredPastMaxTotalBytes_Refused507WithoutReadingTheBodyAndReservesNothing()
    {
        using var factory = new ServerFactory(new Dictionary<string, string?> { ["Server:Collections:MaxTotalBytes"] = "4096" });
        using var client = factory.CreateClient();
        await client.CreateCollectionAsync("held", Vectors.Random(8, 64, seed: 1));
        var budget = factory.Services.GetRequiredService<CollectionBudget>();
        var before = (budget.Count, budget.Bytes);

        var error = await Assert.ThrowsAsync<HttpProblemException>(() => UploadAsync(factory.Services, "more", 64, "application/octet-stream", 64 * 4 * 9));

        Assert.Equal(507, error.Status);
        Assert.Equal("collections_bytes", error.Reason);
        Assert.Contains("2304 more bytes", error.Message);
        Assert.Contains("4096 bytes together (Server:Collections:MaxTotalBytes) and 2048 are in use", error.Message);
        Assert.Equal((1, 2048L), before);
        Assert.Equal(before, (budget.Count, budget.Bytes));
    }

    private Task<IResult> UploadAsync(string name, int? dimension, string contentType, long contentLength) =>
        UploadAsync(server.Factory.Services, name, dimension, contentType, contentLength);

    private static Task<IResult> UploadAsync(IServiceProvider services, string name, int? dimension, string contentType, long contentLength)
    {
        var context = UnreadableBody.Request(services, contentType, contentLength);
        return CollectionsApi.UploadAsync(
            name,
            dimension,
            context,
            services.GetRequiredService<CollectionCatalog>(),
            services.GetRequiredService<CollectionBudget>(),
            services.GetRequiredService<IOptions<ServerOptions>>());
    }
}
