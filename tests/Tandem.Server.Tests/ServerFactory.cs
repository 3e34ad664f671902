using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace Tandem.Server.Tests;

/// <summary>
/// Hosts Tandem.Server for a test: in memory by default, with a known admin
/// token, no demo, and any extra configuration the test gives.
/// </summary>
public sealed class ServerFactory(IDictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    public const string AdminToken = "test-admin-token-0123456789";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Server:Admin:Token", AdminToken);
        builder.UseSetting("Server:Demo:Enabled", "false");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            builder.UseSetting(key, value);
        }
    }

    /// <summary>A client that sends the admin token.</summary>
    public HttpClient CreateAdminClient()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        return client;
    }
}
