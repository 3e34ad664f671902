using System.Net;
using System.Text.Json;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Operations;

public sealed class RoutingTests(SharedServer server) : IClassFixture<SharedServer>
{
    [Fact]
    public async Task UnknownRoute_Requested_Returns404Problem()
    {
        using var client = server.CreateClient();

        using var response = await client.GetAsync("/vectors/nowhere");

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "/vectors/nowhere", "/openapi/v1.json");
    }

    [Theory]
    [InlineData("DELETE", "/collections")]
    [InlineData("GET", "/pricing/european")]
    [InlineData("PATCH", "/collections/x")]
    [InlineData("GET", "/admin/workers/upgrade")]
    public async Task KnownRoute_WrongMethod_Returns405Problem(string method, string path)
    {
        using var client = server.CreateClient();

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        await Problems.AssertAsync(response, HttpStatusCode.MethodNotAllowed, "INVALID_ARGUMENT", method, "not allowed", path);
        Assert.NotEmpty(response.Content.Headers.Allow);
    }

    [Fact]
    public async Task OpenApi_Requested_DescribesEveryRoute()
    {
        using var client = server.CreateClient();

        var document = await (await client.GetAsync("/openapi/v1.json")).ReadJsonAsync();

        var paths = document.GetProperty("paths");
        string[][] routes =
        [
            ["/collections", "get", "post"],
            ["/collections/{name}", "get", "put", "delete"],
            ["/collections/{name}/search", "post"],
            ["/pricing/european", "post"],
            ["/hash/blake3", "post"],
            ["/admin/kernels", "get"],
            ["/admin/kernels/{kernel}", "put"],
            ["/admin/workers", "get"],
            ["/admin/workers/{name}/restart", "post"],
            ["/admin/workers/upgrade", "post"],
            ["/admin/native", "get"],
            ["/admin/native/hot-swap", "post"],
            ["/admin/operations", "get"],
            ["/admin/operations/{id}", "get"],
            ["/admin/load", "get", "put"],
            ["/dashboard/snapshot", "get"],
            ["/dashboard/events", "get"],
            ["/healthz", "get"],
            ["/readyz", "get"],
            ["/metrics", "get"],
        ];
        foreach (var route in routes)
        {
            Assert.True(paths.TryGetProperty(route[0], out var item), $"/openapi/v1.json does not describe {route[0]}; it has {string.Join(", ", paths.EnumerateObject().Select(p => p.Name))}");
            foreach (var method in route[1..])
            {
                Assert.True(item.TryGetProperty(method, out _), $"/openapi/v1.json does not describe {method.ToUpperInvariant()} {route[0]}");
            }
        }

        var upload = paths.GetProperty("/collections/{name}").GetProperty("put").GetProperty("requestBody").GetProperty("content");
        Assert.True(upload.TryGetProperty("application/x-npy", out _));
        Assert.Equal(JsonValueKind.Object, paths.GetProperty("/collections/{name}/search").GetProperty("post").GetProperty("responses").GetProperty("429").ValueKind);
    }
}
