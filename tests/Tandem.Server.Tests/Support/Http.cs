using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Tandem.Server.Tests.Support;

/// <summary>Small builders for request bodies, written out literally so a test controls every byte.</summary>
internal static class Http
{
    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static ByteArrayContent Bytes(byte[] bytes, string contentType)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        return content;
    }

    public static ByteArrayContent Raw(float[][] rows) => Bytes(Vectors.RawF32(rows), "application/octet-stream");

    public static ByteArrayContent NpyFile(byte[] npy) => Bytes(npy, "application/x-npy");

    public static async Task<JsonElement> ReadJsonAsync(this HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"HTTP {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>A JSON collection-create body for <paramref name="rows"/>.</summary>
    public static StringContent Collection(string name, float[][] rows) =>
        Json(JsonSerializer.Serialize(new { name, vectors = rows }));

    /// <summary>Creates a collection from JSON and asserts it was created.</summary>
    public static async Task CreateCollectionAsync(this HttpClient client, string name, float[][] rows)
    {
        using var response = await client.PostAsync("/collections", Collection(name, rows));
        await response.ReadJsonAsync();
    }
}
