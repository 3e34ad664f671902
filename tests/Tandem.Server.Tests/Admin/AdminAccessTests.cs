using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Admin;

public sealed class AdminAccessTests(SharedServer server) : IClassFixture<SharedServer>
{
    public static TheoryData<string, string> Endpoints => new()
    {
        { "GET", "/admin/kernels" },
        { "PUT", "/admin/kernels/similarity.topk" },
        { "GET", "/admin/workers" },
        { "POST", "/admin/workers/w0/restart" },
        { "POST", "/admin/workers/upgrade" },
        { "GET", "/admin/native" },
        { "POST", "/admin/native/hot-swap" },
        { "GET", "/admin/operations" },
        { "GET", "/admin/operations/op-1" },
        { "GET", "/admin/load" },
        { "PUT", "/admin/load" },
    };

    [Theory]
    [MemberData(nameof(Endpoints))]
    public async Task AdminEndpoint_NoToken_Returns401WithBearerChallenge(string method, string path)
    {
        using var client = server.CreateClient();

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "GET" ? null : Http.Json("{}") });

        await Problems.AssertAsync(response, HttpStatusCode.Unauthorized, "UNAUTHENTICATED", "Authorization: Bearer");
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        Assert.DoesNotContain("invalid_token", response.Headers.WwwAuthenticate.ToString());
    }

    [Theory]
    [InlineData("Bearer wrong-token-0123456789")]
    [InlineData("Basic dGVzdDp0ZXN0")]
    [InlineData("Bearer")]
    public async Task AdminEndpoint_WrongToken_Returns401WithInvalidTokenChallenge(string authorization)
    {
        using var client = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/admin/kernels");
        request.Headers.TryAddWithoutValidation("Authorization", authorization);

        using var response = await client.SendAsync(request);

        await Problems.AssertAsync(response, HttpStatusCode.Unauthorized, "UNAUTHENTICATED", "token is wrong");
        Assert.Contains("error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public async Task AdminEndpoint_NonLoopbackCaller_Returns403EvenWithTheToken()
    {
        using var factory = server.Factory.WithWebHostBuilder(builder => builder.ConfigureServices(services =>
            services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter>(new RemoteCaller())));
        using var client = factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ServerFactory.AdminToken);

        using var response = await client.GetAsync("/admin/kernels");

        await Problems.AssertAsync(response, HttpStatusCode.Forbidden, "PERMISSION_DENIED", "loopback", "10.1.2.3", "AllowRemote");
    }

    [Fact]
    public async Task AdminEndpoint_RightToken_Returns200()
    {
        using var client = server.Factory.CreateAdminClient();

        using var response = await client.GetAsync("/admin/kernels");

        var kernels = await response.ReadJsonAsync();
        Assert.Equal(["diagnostics.noop", "hash.blake3", "montecarlo.european", "similarity.topk"], kernels.EnumerateArray().Select(k => k.GetProperty("kernel").GetString()).Order());
    }

    /// <summary>Makes every request look as if it came from another host.</summary>
    private sealed class RemoteCaller : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                context.Connection.RemoteIpAddress = IPAddress.Parse("10.1.2.3");
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
