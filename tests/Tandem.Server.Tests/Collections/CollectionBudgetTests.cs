using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Server.Collections;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Collections;

/// <summary>Server:Collections and the per-request upload cap: refusals up front, and a budget that comes back exactly.</summary>
public sealed class CollectionBudgetTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Create_TenThousandTinyCollections_RefusedPastMaxCountWith507AndTheServerKeepsServing()
    {
        const int maxCount = 50;
        using var factory = new ServerFactory(new Dictionary<string, string?> { ["Server:Collections:MaxCount"] = $"{maxCount}" });
        using var refusals = new Refusals(factory.Services);
        using var client = factory.CreateClient();
        var statuses = new HttpStatusCode[10_000];
        string? refusal = null;

        await Parallel.ForAsync(0, statuses.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, cancel) =>
        {
            using var response = await client.PutAsync($"/collections/tiny-{i}?dimension=2", Http.Raw([[i, 1]]), cancel);
            statuses[i] = response.StatusCode;
            if (response.StatusCode == HttpStatusCode.InsufficientStorage)
            {
                refusal ??= await response.Content.ReadAsStringAsync(cancel);
            }
        });

        Assert.Equal(maxCount, statuses.Count(s => s == HttpStatusCode.Created));
        Assert.Equal(statuses.Length - maxCount, statuses.Count(s => s == HttpStatusCode.InsufficientStorage));
        Assert.Contains("Server:Collections:MaxCount", refusal);
        Assert.Contains($"{maxCount} collections", refusal);
        Assert.Equal(statuses.Length - maxCount, refusals["collections_count"]);
        var created = Array.IndexOf(statuses, HttpStatusCode.Created);
        using var search = await client.PostAsync($"/collections/tiny-{created}/search", Http.Json("""{"query":[1,0],"k":1}"""));
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        Assert.Equal(maxCount, (await (await client.GetAsync("/collections")).ReadJsonAsync()).GetArrayLength());
    }

    [Fact]
    public async Task Create_AtMaxCount_Returns507WithoutRetryAfterAndDropFreesTheSlot()
    {
        using var factory = new ServerFactory(new Dictionary<string, string?> { ["Server:Collections:MaxCount"] = "2" });
        using var client = factory.CreateClient();
        await client.CreateCollectionAsync("one", [[1, 0]]);
        await client.CreateCollectionAsync("two", [[0, 1]]);

        using var refused = await client.PostAsync("/collections", Http.Collection("three", [[1, 1]]));
        await Problems.AssertAsync(refused, HttpStatusCode.InsufficientStorage, "RESOURCE_EXHAUSTED", "limit of 2 collections", "Server:Collections:MaxCount", "DELETE /collections");
        Assert.Null(refused.Headers.RetryAfter);

        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/collections/one")).StatusCode);
        await client.CreateCollectionAsync("three", [[1, 1]]);
    }

    [Fact]
    public async Task Metrics_AfterARefusal_ExposeRefusalsAndWhatCollectionsHold()
    {
        using var factory = new ServerFactory(new Dictionary<string, string?> { ["Server:Collections:MaxCount"] = "1" });
        using var client = factory.CreateClient();
        await client.CreateCollectionAsync("only", [[1, 2, 3, 4]]);
        using var refused = await client.PostAsync("/collections", Http.Collection("more", [[1, 1]]));
        Assert.Equal(HttpStatusCode.InsufficientStorage, refused.StatusCode);

        string metrics = string.Empty;
        await Poll.UntilAsync(async () => (metrics = await client.GetStringAsync("/metrics")).Contains("tandem_server_refusals_total", StringComparison.Ordinal), Bound, intervalMs: 50);

        Assert.Matches("tandem_server_refusals_total\\{[^}]*reason=\"collections_count\"[^}]*\\} 1", metrics);
        Assert.Matches("(?m)^tandem_server_collections(\\{[^}]*\\})? 1( |$)", metrics);
        Assert.Matches("(?m)^tandem_server_collections_bytes(\\{[^}]*\\})? 16( |$)", metrics);
    }

    [Fact]
    public async Task UploadNpy_ShapePastMaxTotalBytes_Returns507AfterTheHeaderOnly()
    {
        using var factory = new ServerFactory(new Dictionary<string, string?> { ["Server:Collections:MaxTotalBytes"] = "4096" });
        using var client = factory.CreateClient();
        // A float64 header for 1,000 × 2 values: 8,000 bytes as f32, past the budget; only the header is sent.
        var npy = Npy.File("<f8", false, "(1000, 2)", []);

        using var response = await client.PutAsync("/collections/wide", Http.NpyFile(npy));

        await Problems.AssertAsync(response, HttpStatusCode.InsufficientStorage, "RESOURCE_EXHAUSTED", "8000 more bytes", "Server:Collections:MaxTotalBytes");
        Assert.Equal(0, factory.Services.GetRequiredService<CollectionBudget>().Bytes);
    }

    [Fact]
    public async Task Upload_Declares2GiBAndSendsOneByte_Returns413UpFrontWithoutReserving()
    {
        await using var host = KestrelHost.Start();
        using var refusals = new Refusals(host.Services);
        var budget = host.Services.GetRequiredService<CollectionBudget>();
        using var socket = await host.ConnectAsync();

        await socket.SendAsync(UploadHeaders("huge", dimension: 4, contentLength: 2L << 30));
        await socket.SendAsync(new byte[1]);
        var response = await ReadResponseAsync(socket);

        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Contains($"limit of {1L << 30} bytes", response);
        Assert.Contains("Server:Limits", response);
        Assert.Equal(1, refusals["body_too_large"]);
        Assert.Equal((0, 0L), (budget.Count, budget.Bytes));
    }

    [Fact]
    public async Task Upload_DeclaredButTruncated_Returns400NamingTheMissingBytesAndReleasesTheReservation()
    {
        // The cap raised so that 256 MiB is accepted up front: reserved, never allocated, since only 1,000 bytes come.
        const long declared = 256L << 20;
        using var factory = new ServerFactory(new Dictionary<string, string?> { ["Server:Limits:MaxUploadBytes"] = $"{4L << 30}" });
        using var client = factory.CreateClient(new() { AllowAutoRedirect = false });
        var budget = factory.Services.GetRequiredService<CollectionBudget>();

        using var response = await client.PutAsync("/collections/short?dimension=4", new ShortContent(declared, new byte[1000]));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", $"after 1000 of the {declared} bytes", $"{declared - 1000} bytes missing", "truncated");
        Assert.Equal((0, 0L), (budget.Count, budget.Bytes));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/collections/short")).StatusCode);
    }

    [Fact]
    public async Task UploadRaw_Chunked_IsCreatedAndChargedExactlyItsValues()
    {
        using var factory = new ServerFactory();
        using var client = factory.CreateClient();
        var rows = Vectors.Random(10_000, 8, seed: 4);

        using var response = await client.PutAsync("/collections/streamed?dimension=8", Chunked(Vectors.RawF32(rows)));

        Assert.Equal(10_000, (await response.ReadJsonAsync()).GetProperty("count").GetInt32());
        var budget = factory.Services.GetRequiredService<CollectionBudget>();
        Assert.Equal((1, 10_000L * 8 * 4), (budget.Count, budget.Bytes));
        using var search = await client.PostAsync("/collections/streamed/search", Http.Json($"{{\"query\":[{string.Join(",", rows[1234].Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}],\"k\":1,\"metric\":\"l2\"}}"));
        Assert.Equal(1234, (await search.ReadJsonAsync()).GetProperty("results")[0].GetProperty("ids")[0].GetInt64());
    }

    [Fact]
    public async Task UploadNpy_Float64_IsChargedFourBytesPerValueAndDropGivesThemBack()
    {
        using var factory = new ServerFactory();
        using var client = factory.CreateClient();
        var budget = factory.Services.GetRequiredService<CollectionBudget>();

        using var response = await client.PutAsync("/collections/doubles", Http.NpyFile(Npy.F8(Vectors.Random(300, 16, seed: 5))));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal((1, 300L * 16 * 4), (budget.Count, budget.Bytes));
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/collections/doubles")).StatusCode);
        Assert.Equal((0, 0L), (budget.Count, budget.Bytes));
    }

    [Fact]
    public async Task Startup_DemoPastMaxTotalBytes_ReadinessDegradedNamingTheLimitAndStillServing()
    {
        using var factory = new ServerFactory(new Dictionary<string, string?>
        {
            ["Server:Demo:Enabled"] = "true",
            ["Server:Demo:Load"] = "false",
            ["Server:Demo:Vectors"] = "100",
            ["Server:Demo:Dimension"] = "8",
            ["Server:Collections:MaxTotalBytes"] = "1024",
        });
        using var client = factory.CreateClient();
        await factory.Services.GetRequiredService<Tandem.Server.Hosting.StartupState>().Done.WaitAsync(Bound);

        using var ready = await client.GetAsync("/readyz");

        var body = await ready.Content.ReadAsStringAsync();
        Assert.Contains("\"Degraded\"", body);
        Assert.Contains("startup work failed", body);
        Assert.Contains("Server:Collections:MaxTotalBytes", body);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        await client.CreateCollectionAsync("small", [[1, 2]]);
    }

    [Fact]
    public async Task Upload_HundredFailures_LeaveTheBudgetWhereItWas()
    {
        await using var host = KestrelHost.Start(new Dictionary<string, string?> { ["Server:Limits:MaxUploadBytes"] = "65536" });
        using var client = host.CreateClient();
        await client.CreateCollectionAsync("kept", Vectors.Random(10, 4, seed: 2));
        var budget = host.Services.GetRequiredService<CollectionBudget>();
        var before = (budget.Count, budget.Bytes);
        var npy = Npy.F4(Vectors.Random(10, 4, seed: 3));
        Func<int, Task>[] failures =
        [
            async i => Assert.Equal(HttpStatusCode.BadRequest, (await client.PutAsync($"/collections/nan-{i}?dimension=2", Http.Raw([[1, 2], [float.NaN, 4]]))).StatusCode),
            async i => Assert.Equal(HttpStatusCode.BadRequest, (await client.PutAsync($"/collections/cut-{i}", Http.NpyFile(npy[..^3]))).StatusCode),
            async i => Assert.Equal(HttpStatusCode.BadRequest, (await client.PutAsync($"/collections/row-{i}?dimension=3", Http.Raw([[1, 2], [3, 4]]))).StatusCode),
            async i => Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await client.PutAsync($"/collections/big-{i}?dimension=4", Chunked(new byte[1 << 17]))).StatusCode),
            async i => Assert.Equal(HttpStatusCode.Conflict, (await client.PutAsync("/collections/kept?dimension=4", Http.Raw([[1, 2, 3, 4]]))).StatusCode),
            async i => Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync("/collections", Http.Json("""{"name":"bad name","vectors":[[1]]}"""))).StatusCode),
            async i => Assert.Equal(HttpStatusCode.BadRequest, (await client.PutAsync($"/collections/chunked-{i}?dimension=3", Chunked(new byte[4 * 3 * 100 + 2]))).StatusCode),
            async i =>
            {
                // The client leaves midway through a declared body.
                using var socket = await host.ConnectAsync();
                await socket.SendAsync(UploadHeaders($"gone-{i}", dimension: 4, contentLength: 32 << 10));
                await socket.SendAsync(new byte[4096]);
                socket.Close();
            },
        ];

        for (var i = 0; i < 100; i++)
        {
            await failures[i % failures.Length](i);
        }

        await Poll.UntilAsync(() => (budget.Count, budget.Bytes) == before, Bound);
        Assert.Single((await (await client.GetAsync("/collections")).ReadJsonAsync()).EnumerateArray());
    }

    private static ByteArrayContent Chunked(byte[] bytes)
    {
        var content = new ChunkedBytes(bytes);
        content.Headers.ContentType = new("application/octet-stream");
        return content;
    }

    private static byte[] UploadHeaders(string name, int dimension, long contentLength) => Encoding.ASCII.GetBytes(
        $"PUT /collections/{name}?dimension={dimension} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {contentLength}\r\n\r\n");

    /// <summary>The response's status line and headers (and with <paramref name="body"/>, everything until the server closes or a bound passes).</summary>
    private static async Task<string> ReadResponseAsync(Socket socket, bool body = false)
    {
        using var cancel = new CancellationTokenSource(Bound);
        var received = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            while (body || !received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel.Token);
                if (read == 0)
                {
                    break;
                }

                received.Append(Encoding.ASCII.GetString(buffer, 0, read));
                if (body && received.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && received.ToString().TrimEnd().EndsWith('}'))
                {
                    break;
                }
            }
        }
        catch (SocketException)
        {
            // Reset after the answer: what arrived is the answer.
        }

        return received.ToString();
    }

    /// <summary>A body that declares <paramref name="declared"/> bytes and ends after <paramref name="sent"/>.</summary>
    private sealed class ShortContent : HttpContent
    {
        private readonly long _declared;
        private readonly byte[] _sent;

        public ShortContent(long declared, byte[] sent)
        {
            _declared = declared;
            _sent = sent;
            Headers.ContentType = new("application/octet-stream");
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(_sent).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = _declared;
            return true;
        }
    }

    /// <summary>Bytes sent without a Content-Length (chunked transfer).</summary>
    private sealed class ChunkedBytes(byte[] bytes) : ByteArrayContent(bytes)
    {
        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
