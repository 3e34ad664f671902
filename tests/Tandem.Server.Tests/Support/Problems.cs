using System.Net;
using System.Text.Json;

namespace Tandem.Server.Tests.Support;

/// <summary>Assertions on RFC 7807 problem responses: status, Tandem code, a helpful detail and a correlation id.</summary>
internal static class Problems
{
    /// <summary>
    /// Asserts <paramref name="response"/> is a problem with <paramref name="status"/>
    /// and <paramref name="code"/> whose detail contains every one of
    /// <paramref name="detailFragments"/> (case-insensitive); returns the problem.
    /// </summary>
    public static async Task<JsonElement> AssertAsync(HttpResponseMessage response, HttpStatusCode status, string code, params string[] detailFragments)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected HTTP {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("correlationId").GetString()), $"no correlationId in {body}");
        var detail = problem.GetProperty("detail").GetString() ?? string.Empty;
        foreach (var fragment in detailFragments)
        {
            Assert.True(detail.Contains(fragment, StringComparison.OrdinalIgnoreCase), $"detail '{detail}' does not mention '{fragment}'");
        }

        return problem;
    }
}
