using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Tandem.Kernels;
using Tandem.Perf.Cli;
using Tandem.Perf.Telemetry;
using Tandem.Testing;

namespace Tandem.Perf.Targets;

/// <summary>
/// A running Tandem.Server over HTTP, through its endpoints: top-k as
/// <c>POST /collections/{name}/search</c> (the collection uploaded first
/// from the drawn state, or an existing one with <c>--collection</c>),
/// pricing as <c>POST /pricing/european</c>, hashing as <c>POST /hash/blake3</c>.
/// Inputs are the same descriptor-drawn cases as in process, written as
/// the endpoints' JSON or raw bodies once, before the load starts. The
/// server-side split comes from its <c>/metrics</c>.
/// </summary>
internal sealed class HttpTarget : IPerfTarget
{
    /// <summary>The kernels the reference server has an endpoint for.</summary>
    public static readonly IReadOnlyList<string> Kernels = ["similarity.topk", "montecarlo.european", "hash.blake3"];

    /// <summary>Longest a request may take before it counts as TIMEOUT.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;
    private readonly Uri _path;
    private readonly string _mediaType;
    private readonly byte[][] _bodies;
    private readonly string? _uploadedCollection;

    private HttpTarget(HttpClient http, Uri path, string mediaType, byte[][] bodies, string? uploadedCollection, string description, string kernel)
    {
        _http = http;
        _path = path;
        _mediaType = mediaType;
        _bodies = bodies;
        _uploadedCollection = uploadedCollection;
        Description = description;
        Telemetry = new PrometheusScrape(http, kernel);
    }

    public string Backend => "http";

    public string Description { get; }

    public IServerTelemetry Telemetry { get; }

    /// <summary>Checks the server is ready, uploads the collection top-k needs, writes the bodies and checks one request succeeds.</summary>
    /// <exception cref="UsageException">The kernel has no endpoint, or --collection does not fit the drawn queries.</exception>
    /// <exception cref="TargetException">The server does not answer, refuses the upload, or fails the first request.</exception>
    public static async Task<HttpTarget> CreateAsync(RunOptions options, KernelInputs inputs, CancellationToken cancellationToken)
    {
        var kernel = inputs.KernelContract.Name;
        if (!Kernels.Contains(kernel))
        {
            throw new UsageException($"--backend http drives Tandem.Server's endpoints, which serve {string.Join(", ", Kernels)}; kernel '{kernel}' has no HTTP endpoint there (run it in process with --backend native or remote)");
        }

        var url = options.Url ?? throw new UsageException("--backend http needs --url, the server's base address (for example --url http://127.0.0.1:5080)");
        var http = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1) }) { BaseAddress = url, Timeout = RequestTimeout };
        try
        {
            await CheckReadyAsync(http, url, cancellationToken).ConfigureAwait(false);
            var cases = InProcessTarget.DrawPool(options, inputs, out var first);
            string? uploaded = null;
            HttpTarget target;
            switch (kernel)
            {
                case "similarity.topk":
                    var collection = options.Collection;
                    if (collection is null)
                    {
                        uploaded = collection = $"tandem-perf-{Environment.ProcessId}";
                        await UploadAsync(http, collection, first.StateTensors![0], cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await CheckCollectionAsync(http, collection, first.Symbols["dim"], cancellationToken).ConfigureAwait(false);
                    }

                    target = new HttpTarget(http, new Uri($"/collections/{Uri.EscapeDataString(collection)}/search", UriKind.Relative), "application/json",
                        [.. cases.Select(c => SearchBody(c, inputs))], uploaded, $"similarity.topk over HTTP: POST {url}collections/{collection}/search", kernel);
                    break;
                case "montecarlo.european":
                    target = new HttpTarget(http, new Uri("/pricing/european", UriKind.Relative), "application/json",
                        [.. cases.Select(c => PricingBody(c, inputs))], null, $"montecarlo.european over HTTP: POST {url}pricing/european", kernel);
                    break;
                default:
                    var length = first.OutputSymbols.GetValueOrDefault("output_len", 32);
                    target = new HttpTarget(http, new Uri($"/hash/blake3?length={length}", UriKind.Relative), "application/octet-stream",
                        [.. cases.Select(c => (byte[])c.Inputs[0].Data)], null, $"hash.blake3 over HTTP: POST {url}hash/blake3", kernel);
                    break;
            }

            if (await target.SendAsync(0, cancellationToken, detail: true).ConfigureAwait(false) is { } error)
            {
                await target.DisposeAsync().ConfigureAwait(false);
                throw new TargetException($"the first request to {url} failed: {error}");
            }

            return target;
        }
        catch
        {
            http.Dispose();
            throw;
        }
    }

    public ValueTask<string?> InvokeAsync(long sequence, CancellationToken cancellationToken) => SendAsync(sequence, cancellationToken, detail: false);

    public async ValueTask DisposeAsync()
    {
        if (_uploadedCollection is not null)
        {
            try
            {
                using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                using var response = await _http.DeleteAsync(new Uri($"/collections/{Uri.EscapeDataString(_uploadedCollection)}", UriKind.Relative), cleanup.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                // The server went away; its collection went with it.
            }
        }

        _http.Dispose();
    }

    private async ValueTask<string?> SendAsync(long sequence, CancellationToken cancellationToken, bool detail)
    {
        using var content = new ByteArrayContent(_bodies[sequence % _bodies.Length]);
        content.Headers.ContentType = new MediaTypeHeaderValue(_mediaType);
        try
        {
            using var response = await _http.PostAsync(_path, content, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return null;
            }

            var code = ProblemCode(body) ?? $"HTTP_{(int)response.StatusCode}";
            return detail ? $"{code} (HTTP {(int)response.StatusCode}): {System.Text.Encoding.UTF8.GetString(body)}" : code;
        }
        catch (HttpRequestException e)
        {
            return detail ? $"CONNECTION_ERROR: {e.Message}" : "CONNECTION_ERROR";
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return "CANCELLED";
        }
        catch (OperationCanceledException)
        {
            return "TIMEOUT";
        }
    }

    /// <summary>The Tandem code of an RFC 7807 problem body ("code"), or null.</summary>
    internal static string? ProblemCode(byte[] body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String
                ? code.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static async Task CheckReadyAsync(HttpClient http, Uri url, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(new Uri("/readyz", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new TargetException($"the server at {url} is not ready: GET /readyz answered {(int)response.StatusCode}");
            }
        }
        catch (HttpRequestException e)
        {
            throw new TargetException($"no server answers at {url}: {e.Message} (start one with `dotnet run --project src/Tandem.Server`)");
        }
    }

    private static async Task UploadAsync(HttpClient http, string collection, TensorData vectors, CancellationToken cancellationToken)
    {
        var values = (float[])vectors.Data;
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await http.PutAsync(new Uri($"/collections/{Uri.EscapeDataString(collection)}?dimension={vectors.Shape[1]}", UriKind.Relative), content, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new TargetException($"the server refused the collection upload ({vectors}): HTTP {(int)response.StatusCode}: {body}");
        }
    }

    private static async Task CheckCollectionAsync(HttpClient http, string collection, long dimension, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(new Uri($"/collections/{Uri.EscapeDataString(collection)}", UriKind.Relative), cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new UsageException($"--collection {collection}: the server answered HTTP {(int)response.StatusCode}; list its collections with GET /collections");
        }

        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        var actual = json.RootElement.GetProperty("dimension").GetInt64();
        if (actual != dimension)
        {
            throw new UsageException($"--collection {collection} holds vectors of dimension {actual}; give --shape dim={actual}");
        }
    }

    private static byte[] SearchBody(KernelCase @case, KernelInputs inputs)
    {
        var queries = (float[])@case.Inputs[0].Data;
        var (rows, dim) = (@case.Inputs[0].Shape[0], @case.Inputs[0].Shape[1]);
        var metric = inputs.KernelContract.Params.First(p => p.Name == "metric").Choices[(int)inputs.Params["metric"]];
        return Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("queries");
            for (var r = 0; r < rows; r++)
            {
                writer.WriteStartArray();
                for (var d = 0; d < dim; d++)
                {
                    writer.WriteNumberValue(queries[(r * dim) + d]);
                }

                writer.WriteEndArray();
            }

            writer.WriteEndArray();
            writer.WriteNumber("k", (long)inputs.Params["k"]);
            writer.WriteString("metric", metric);
            writer.WriteEndObject();
        });
    }

    private static byte[] PricingBody(KernelCase @case, KernelInputs inputs)
    {
        var options = (double[])@case.Inputs[0].Data;
        return Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("options");
            for (var row = 0; row + 5 < options.Length; row += 6)
            {
                writer.WriteStartObject();
                writer.WriteNumber("spot", options[row]);
                writer.WriteNumber("strike", options[row + 1]);
                writer.WriteNumber("rate", options[row + 2]);
                writer.WriteNumber("volatility", options[row + 3]);
                writer.WriteNumber("maturity", options[row + 4]);
                writer.WriteString("kind", options[row + 5] == 1 ? "call" : options[row + 5] == 0 ? "put" : options[row + 5].ToString(CultureInfo.InvariantCulture));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteNumber("paths", (long)inputs.Params["paths"]);
            writer.WriteNumber("seed", unchecked((ulong)(long)inputs.Params["seed"]));
            writer.WriteBoolean("antithetic", inputs.Params["antithetic"] != 0);
            writer.WriteEndObject();
        });
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }
}
