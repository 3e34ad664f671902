using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Admin;

/// <summary>Server:Workers=2: real tandem-worker processes supervised by the server, restarted and upgraded through the admin API.</summary>
public sealed class WorkerPoolTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly float[][] Rows = Vectors.Random(500, 8, seed: 21);
    private ServerFactory _factory = null!;

    public async Task InitializeAsync()
    {
        _factory = CreateSut();
        using var client = _factory.CreateClient();
        await ReadyAsync(client);
        await client.CreateCollectionAsync("pool", Rows);
    }

    [Fact]
    public async Task Workers_Started_TwoServeAndSearchRunsOnRemote()
    {
        using var client = _factory.CreateClient();
        using var admin = _factory.CreateAdminClient();

        var workers = await WorkersAsync(admin);
        var ready = await (await client.GetAsync("/readyz")).ReadJsonAsync();
        var backend = await SearchBackendAsync(client);

        Assert.Equal(["w0", "w1"], workers.Select(w => w.GetProperty("name").GetString()).Order());
        Assert.All(workers, w => Assert.Equal("serving", w.GetProperty("status").GetString()));
        Assert.All(workers, w => Assert.True(w.GetProperty("processId").GetInt32() > 0));
        Assert.Equal("Healthy", ready.GetProperty("status").GetString());
        Assert.Equal(2, ready.GetProperty("entries").GetProperty("tandem").GetProperty("data").GetProperty("workersServing").GetInt32());
        Assert.Equal("remote", backend);
    }

    [Fact]
    public async Task RestartWorker_W0_OperationSucceedsWithANewProcess()
    {
        using var client = _factory.CreateClient();
        using var admin = _factory.CreateAdminClient();
        var before = ProcessIdOf(await WorkersAsync(admin), "w0");

        using var accepted = await admin.PostAsync("/admin/workers/w0/restart", content: null);
        var operation = await Support.Admin.CompleteAsync(admin, accepted);

        Assert.Equal("restart", operation.GetProperty("kind").GetString());
        Assert.Equal("succeeded", operation.GetProperty("state").GetString());
        var workers = await WorkersAsync(admin);
        Assert.NotEqual(before, ProcessIdOf(workers, "w0"));
        Assert.All(workers, w => Assert.Equal("serving", w.GetProperty("status").GetString()));
        Assert.Equal("remote", await SearchBackendAsync(client));
    }

    [Fact]
    public async Task RestartWorker_UnknownName_Returns404ListingTheWorkers()
    {
        using var admin = _factory.CreateAdminClient();

        using var response = await admin.PostAsync("/admin/workers/w9/restart", content: null);

        await Problems.AssertAsync(response, HttpStatusCode.NotFound, "NOT_FOUND", "'w9'", "w0", "w1");
    }

    [Fact]
    public async Task Upgrade_MissingBinary_Returns400()
    {
        using var admin = _factory.CreateAdminClient();

        using var response = await admin.PostAsync("/admin/workers/upgrade", Http.Json("""{"workerPath":"/nonexistent/tandem-worker"}"""));

        await Problems.AssertAsync(response, HttpStatusCode.BadRequest, "INVALID_ARGUMENT", "'workerPath'", "does not exist");
    }

    [Fact]
    public async Task Upgrade_UnderSearchLoad_CompletesWithoutAFailedSearch()
    {
        using var client = _factory.CreateClient();
        using var admin = _factory.CreateAdminClient();
        var before = (await WorkersAsync(admin)).Select(w => w.GetProperty("instanceId").GetString()).ToHashSet();
        using var stop = new CancellationTokenSource();
        var load = Enumerable.Range(0, 2).Select(_ => SearchUntilAsync(client, stop.Token)).ToArray();

        using var accepted = await admin.PostAsync("/admin/workers/upgrade", Http.Json("{}"));
        var operation = await Support.Admin.CompleteAsync(admin, accepted);
        await stop.CancelAsync();
        var results = await Task.WhenAll(load);

        Assert.Equal("succeeded", operation.GetProperty("state").GetString());
        Assert.All(results, r => Assert.True(r.Failures.Count == 0, string.Join("\n", r.Failures)));
        Assert.True(results.Sum(r => r.Succeeded) > 0);
        var after = await WorkersAsync(admin);
        Assert.Equal(2, after.Length);
        Assert.All(after, w => Assert.DoesNotContain(w.GetProperty("instanceId").GetString(), before));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
    }

    [Fact]
    public async Task Dispose_AfterRestart_EveryWorkerProcessIsGone()
    {
        var factory = CreateSut();
        var seen = new HashSet<int>();
        try
        {
            using var client = factory.CreateClient();
            using var admin = factory.CreateAdminClient();
            await ReadyAsync(client);
            seen.UnionWith((await WorkersAsync(admin)).Select(w => w.GetProperty("processId").GetInt32()));
            using var accepted = await admin.PostAsync("/admin/workers/w1/restart", content: null);
            await Support.Admin.CompleteAsync(admin, accepted);
            seen.UnionWith((await WorkersAsync(admin)).Select(w => w.GetProperty("processId").GetInt32()));
        }
        finally
        {
            await factory.DisposeAsync();
        }

        Assert.Equal(3, seen.Count);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (seen.Any(IsWorkerRunning))
        {
            await Task.Delay(100, timeout.Token);
        }
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    private static ServerFactory CreateSut() => new(new Dictionary<string, string?>
    {
        ["Server:Workers"] = "2",
        ["Tandem:Remote:DrainGrace"] = "00:00:05",
    });

    private static async Task ReadyAsync(HttpClient client)
    {
        using var timeout = new CancellationTokenSource(Bound);
        while ((await client.GetAsync("/readyz", timeout.Token)).StatusCode != HttpStatusCode.OK)
        {
            await Task.Delay(100, timeout.Token);
        }
    }

    private static async Task<JsonElement[]> WorkersAsync(HttpClient admin) =>
        [.. (await (await admin.GetAsync("/admin/workers")).ReadJsonAsync()).EnumerateArray()];

    private static int ProcessIdOf(JsonElement[] workers, string name) =>
        workers.Single(w => w.GetProperty("name").GetString() == name).GetProperty("processId").GetInt32();

    private static async Task<string?> SearchBackendAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/collections/pool/search", Http.Json(JsonSerializer.Serialize(new { query = Rows[3], k = 1 })));
        var body = await response.ReadJsonAsync();
        Assert.Equal(3, body.GetProperty("results")[0].GetProperty("ids")[0].GetInt64());
        return body.GetProperty("backend").GetString();
    }

    private static async Task<(int Succeeded, List<string> Failures)> SearchUntilAsync(HttpClient client, CancellationToken stop)
    {
        var succeeded = 0;
        var failures = new List<string>();
        while (!stop.IsCancellationRequested)
        {
            using var response = await client.PostAsync("/collections/pool/search", Http.Json(JsonSerializer.Serialize(new { query = Rows[7], k = 2, metric = "l2" })), CancellationToken.None);
            var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
            if (response.IsSuccessStatusCode && body.Contains("\"remote\"", StringComparison.Ordinal))
            {
                succeeded++;
            }
            else
            {
                failures.Add($"{(int)response.StatusCode}: {body}");
            }
        }

        return (succeeded, failures);
    }

    private static bool IsWorkerRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited && process.ProcessName.StartsWith("tandem-worker", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            // Not there, or it exited between the two reads above.
            return false;
        }
    }
}
