using System.Net;
using System.Text.Json;

namespace Tandem.Server.Tests.Support;

/// <summary>Admin calls shared by the admin and worker tests.</summary>
internal static class Admin
{
    private static readonly TimeSpan OperationBound = TimeSpan.FromSeconds(120);

    /// <summary>Follows a 202's operation until it ends; returns its final view.</summary>
    public static async Task<JsonElement> CompleteAsync(HttpClient admin, HttpResponseMessage accepted)
    {
        var body = await accepted.Content.ReadAsStringAsync();
        Assert.True(accepted.StatusCode == HttpStatusCode.Accepted, $"expected 202, got {(int)accepted.StatusCode}: {body}");
        var location = accepted.Headers.Location?.OriginalString;
        var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString();
        Assert.Equal($"/admin/operations/{id}", location);
        using var timeout = new CancellationTokenSource(OperationBound);
        while (true)
        {
            var operation = await (await admin.GetAsync(location, timeout.Token)).ReadJsonAsync();
            if (operation.GetProperty("state").GetString() != "running")
            {
                return operation;
            }

            await Task.Delay(100, timeout.Token);
        }
    }

    public static async Task<JsonElement> SetKernelAsync(HttpClient admin, string kernel, string json)
    {
        using var response = await admin.PutAsync($"/admin/kernels/{kernel}", Http.Json(json));
        return await response.ReadJsonAsync();
    }
}
