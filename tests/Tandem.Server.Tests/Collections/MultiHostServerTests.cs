using System.Net;
using System.Text.Json;
using Tandem.Server.Tests.Support;
using Tandem.Tests.Shared;

namespace Tandem.Server.Tests.Collections;

/// <summary>
/// The HTTP tier scaled out for real: two Tandem.Server processes, each on
/// its own "host" (a network namespace on its own address), sharing one
/// state repository and one worker on a third host (TCP with the token),
/// called from the test's namespace over veth. Creating one name on both at
/// once: one 201, one 409; a collection created on one is served by the
/// other within the sync interval with the same answers; dropped on the
/// other, it is gone from the first. Bounded and self-cleaning (processes
/// and namespaces go with the test).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MultiHostServerTests : IDisposable
{
    private const int Dimension = 16;
    private const int HttpPort = 8080;
    private const string Token = "multi-host-server-token-0123456789";
    private static readonly float[][] Rows = Vectors.Random(300, Dimension, seed: 51);
    private static readonly float[] Query = Vectors.Random(1, Dimension, seed: 52)[0];

    private readonly TempStateRepository _repository = new();

    public void Dispose() => _repository.Dispose();

    [Fact]
    public async Task TwoServersOnTwoHosts_OneRepositoryOneWorker_ServeEachOthersCollections_AndRaceForANameFairly()
    {
        await using var hosts = new NetworkHosts();
        for (var i = 1; i <= 3; i++)
        {
            await hosts.AddAsync(i);
        }

        var tokenFile = Path.Combine(Path.GetTempPath(), $"tandem-token-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_repository.Root);
        File.WriteAllText(tokenFile, Token);
        File.SetUnixFileMode(tokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            var worker = hosts.Start(3, Path.Combine(AppContext.BaseDirectory, "tandem-worker"),
                ["--listen", $"{hosts.Address(3)}:50051", "--token-file", tokenFile, "--repository", _repository.Root, "--log-level", "error", "--grace", "1"]);
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                var line = await worker.StandardOutput.ReadLineAsync(timeout.Token);
                Assert.True(line?.Contains("listening", StringComparison.Ordinal) == true, $"the worker did not start: {hosts.Errors(worker)}");
            }

            var environment = new Dictionary<string, string?>
            {
                ["Tandem__Backend"] = "Remote",
                ["Tandem__Remote__Endpoints__0"] = $"http://{hosts.Address(3)}:50051",
                ["Tandem__Remote__WorkerToken"] = Token,
                ["Server__Admin__Token"] = "multi-host-admin-token-0123456789",
                ["Server__Collections__RepositorySyncInterval"] = "00:00:00.200",
                ["DOTNET_gcServer"] = "0",
            };
            var servers = new List<System.Diagnostics.Process>();
            foreach (var index in new[] { 1, 2 })
            {
                servers.Add(hosts.Start(index, "dotnet", [Path.Combine(AppContext.BaseDirectory, "Tandem.Server.dll"), "--urls", $"http://{hosts.Address(index)}:{HttpPort}", "--state-repository", _repository.Root], environment));
            }

            // The servers log on stdout: read it, so a full pipe never blocks
            // them, keep the tail for failures, and take the worker's join
            // (event 101, "joined routing") after the host's "Application
            // started" (Kestrel listening) as the signal that one is ready.
            var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
            var joined = new List<Task>();
            foreach (var server in servers)
            {
                var join = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                joined.Add(join.Task);
                var (started, routed) = (false, false);
                server.OutputDataReceived += (_, line) =>
                {
                    if (line.Data is { } text)
                    {
                        logs.Enqueue(text);
                        while (logs.Count > 40 && logs.TryDequeue(out string? _))
                        {
                        }

                        started |= text.Contains("Application started", StringComparison.Ordinal);
                        routed |= text.Contains("joined routing", StringComparison.Ordinal);
                        if (started && routed)
                        {
                            join.TrySetResult();
                        }
                    }
                };
                server.Exited += (_, _) => join.TrySetException(new InvalidOperationException("the server exited"));
                server.EnableRaisingEvents = true;
                server.BeginOutputReadLine();
            }

            using var a = new HttpClient { BaseAddress = new Uri($"http://{hosts.Address(1)}:{HttpPort}"), Timeout = TimeSpan.FromSeconds(30) };
            using var b = new HttpClient { BaseAddress = new Uri($"http://{hosts.Address(2)}:{HttpPort}"), Timeout = TimeSpan.FromSeconds(30) };
            foreach (var (client, (server, join)) in new[] { a, b }.Zip(servers.Zip(joined)))
            {
                var signalled = await Task.WhenAny(join, Task.Delay(TimeSpan.FromSeconds(90))) == join && join.IsCompletedSuccessfully;
                Assert.True(signalled && await ReadyAsync(client), $"the server at {client.BaseAddress} did not become ready: {hosts.Errors(server)}\n{string.Join('\n', logs)}");
            }

            // One name from both at once: one wins, the other is told it exists.
            var responses = await Task.WhenAll(a.PostAsync("/collections", Http.Collection("race", Rows)), b.PostAsync("/collections", Http.Collection("race", Rows)));
            Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Conflict], responses.Select(r => r.StatusCode).Order().ToArray());
            Assert.Contains("already exists", await responses.Single(r => r.StatusCode == HttpStatusCode.Conflict).Content.ReadAsStringAsync());

            // Created on A, served by B (from the repository, on the worker) with the same answer.
            await a.CreateCollectionAsync("shared", Rows);
            var onA = await SearchAsync(a, "shared");
            Assert.Equal("remote", onA.Backend);
            await Poll.UntilAsync(async () => (await b.GetAsync("/collections/shared")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30), intervalMs: 100);
            var onB = await SearchAsync(b, "shared");
            Assert.Equal(onA.Results, onB.Results);

            // Dropped on B, gone from A.
            Assert.Equal(HttpStatusCode.NoContent, (await b.DeleteAsync("/collections/shared")).StatusCode);
            await Poll.UntilAsync(async () => (await a.GetAsync("/collections/shared")).StatusCode == HttpStatusCode.NotFound, TimeSpan.FromSeconds(30), intervalMs: 100);
        }
        finally
        {
            File.Delete(tokenFile);
        }
    }

    private static async Task<bool> ReadyAsync(HttpClient client)
    {
        try
        {
            using var response = await client.GetAsync("/readyz");
            return response.StatusCode == HttpStatusCode.OK;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private static async Task<(string Backend, string Results)> SearchAsync(HttpClient client, string name)
    {
        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(JsonSerializer.Serialize(new { query = Query, k = 5, metric = "cosine" })));
        var body = await response.ReadJsonAsync();
        return (body.GetProperty("backend").GetString()!, body.GetProperty("results").GetRawText());
    }
}
