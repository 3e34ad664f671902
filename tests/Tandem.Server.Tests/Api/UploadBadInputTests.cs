using System.Net;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Api;

public sealed class UploadBadInputTests(SharedServer server) : IClassFixture<SharedServer>
{
    private static readonly float[][] Rows = [[1, 2, 3], [4, 5, 6]];

    [Fact]
    public async Task UploadRaw_MissingDimension_Returns400AskingForIt()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.Raw(Rows));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'dimension'", "?dimension=");
        await AssertNotListedAsync(client, name);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public async Task UploadRaw_NonPositiveDimension_Returns400(string dimension)
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}?dimension={dimension}", Http.Raw(Rows));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'dimension'", "positive");
    }

    [Fact]
    public async Task UploadRaw_NonNumericDimension_Returns400()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}?dimension=three", Http.Raw(Rows));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "parameter 'dimension'", "integer", "'three'");
    }

    [Fact]
    public async Task UploadRaw_PartialRow_Returns400NamingTheRowSize()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}?dimension=4", Http.Raw(Rows));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "24 bytes", "16 bytes each");
    }

    [Fact]
    public async Task UploadRaw_EmptyBody_Returns400()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}?dimension=3", Http.Bytes([], "application/octet-stream"));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "empty");
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public async Task UploadRaw_NonFiniteValue_Returns400AndCreatesNothing(float value)
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}?dimension=3", Http.Raw([[1, 2, 3], [4, value, 6]]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "NaN or infinity");
        await AssertNotListedAsync(client, name);
    }

    [Fact]
    public async Task UploadNpy_NaNValue_Returns400AndCreatesNothing()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.F4([[1, 2], [float.NaN, 4]])));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "NaN or infinity");
        await AssertNotListedAsync(client, name);
    }

    [Fact]
    public async Task UploadNpy_Float64BeyondFloat32Range_Returns400()
    {
        var (client, name) = CreateSut();
        var data = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(0), 1.0);
        System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8), 1e300);

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.File("<f8", false, "(1, 2)", data)));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "NaN or infinity");
        await AssertNotListedAsync(client, name);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/json")]
    public async Task Upload_WrongContentType_Returns415NamingTheAcceptedTypes(string contentType)
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}?dimension=3", Http.Bytes(Vectors.RawF32(Rows), contentType));

        await Problems.AssertAsync(response, HttpStatusCode.UnsupportedMediaType, "INVALID_ARGUMENT", "application/octet-stream", "application/x-npy", contentType);
    }

    [Fact]
    public async Task UploadNpy_WrongMagic_Returns400()
    {
        var (client, name) = CreateSut();
        var npy = Npy.File("<f4", false, Npy.Shape(Rows), Npy.Data(Rows, false), magic: "\x93NUMPZ"u8.ToArray());

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(npy));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "not a .npy file", "numpy.save");
    }

    [Theory]
    [InlineData(">f4", "'>f4'")]
    [InlineData("<i4", "'<i4'")]
    [InlineData("<f2", "'<f2'")]
    public async Task UploadNpy_UnsupportedDtype_Returns400NamingIt(string descr, string named)
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.File(descr, false, Npy.Shape(Rows), Npy.Data(Rows, false))));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", named, "little-endian");
    }

    [Fact]
    public async Task UploadNpy_FortranOrder_Returns400SuggestingCOrder()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.File("<f4", true, Npy.Shape(Rows), Npy.Data(Rows, false))));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "Fortran order", "C order");
    }

    [Theory]
    [InlineData("(6,)")]
    [InlineData("(1, 2, 3)")]
    [InlineData("()")]
    public async Task UploadNpy_NotTwoDimensional_Returns400NamingTheShape(string shape)
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.File("<f4", false, shape, Npy.Data(Rows, false))));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "2-D array");
    }

    [Fact]
    public async Task UploadNpy_TruncatedData_Returns400SayingSo()
    {
        var (client, name) = CreateSut();
        var npy = Npy.F4(Rows);

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(npy[..^5]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "truncated", "(2, 3)");
        await AssertNotListedAsync(client, name);
    }

    [Fact]
    public async Task UploadNpy_TruncatedHeader_Returns400()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.F4(Rows)[..40]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "header", "truncated");
    }

    [Fact]
    public async Task UploadNpy_TrailingBytes_Returns400()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile([.. Npy.F4(Rows), 0, 0, 0, 0]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "continues past", "exactly one .npy");
    }

    [Fact]
    public async Task UploadNpy_EmptyBody_Returns400()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile([]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "not a .npy file");
    }

    [Fact]
    public async Task UploadNpy_ZeroRows_Returns400()
    {
        var (client, name) = CreateSut();

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(Npy.File("<f4", false, "(0, 3)", [])));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "empty");
    }

    [Fact]
    public async Task UploadNpy_MalformedHeader_Returns400()
    {
        var (client, name) = CreateSut();
        var npy = Npy.F4(Rows);
        "'dexcr'"u8.CopyTo(npy.AsSpan(11));

        using var response = await client.PutAsync($"/collections/{name}", Http.NpyFile(npy));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "header is malformed");
    }

    private (HttpClient Client, string Name) CreateSut() => (server.CreateClient(), SharedServer.UniqueName("upload"));

    private static async Task AssertNotListedAsync(HttpClient client, string name)
    {
        var list = await (await client.GetAsync("/collections")).ReadJsonAsync();
        Assert.DoesNotContain(list.EnumerateArray(), c => c.GetProperty("name").GetString() == name);
    }
}
