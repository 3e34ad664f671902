using System.Net;
using System.Text.Json;
using Tandem.Server.Tests.Support;
using Tandem.Tests.Shared;

namespace Tandem.Server.Tests.Collections;

/// <summary>
/// Collections in the state repository (Tandem:StateRepository): a server
/// restarted on the same directory serves every collection again with the
/// same answers and nothing re-uploaded; a dropped collection's file goes; a
/// damaged file is refused at startup while the others load; two servers
/// sharing the directory serve what the other creates and drop what it
/// drops, and creating one name at once: one wins, the other gets 409.
/// </summary>
public sealed class DurableCollectionTests : IDisposable
{
    private const int Dimension = 16;
    private static readonly float[][] Rows = Vectors.Random(200, Dimension, seed: 41);
    private static readonly float[] Query = Vectors.Random(1, Dimension, seed: 42)[0];

    private readonly TempStateRepository _repository = new();

    public void Dispose() => _repository.Dispose();

    [Fact]
    public async Task Restart_SameRepository_ServesEveryCollectionWithTheSameAnswers()
    {
        string before;
        using (var first = Server())
        {
            using var client = await ReadyClientAsync(first);
            await client.CreateCollectionAsync("docs", Rows);
            await client.CreateCollectionAsync("more", Rows[..50]);
            before = await SearchAsync(client, "docs");
        }

        Assert.True(File.Exists(_repository.FileOf("collection.docs", 1)));
        using var second = Server();
        using var restarted = await ReadyClientAsync(second);
        var listed = await (await restarted.GetAsync("/collections")).ReadJsonAsync();
        var collections = listed.EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c);
        Assert.Equal(["docs", "more"], collections.Keys.Order());
        Assert.Equal(200, collections["docs"].GetProperty("count").GetInt32());
        Assert.Equal(50, collections["more"].GetProperty("count").GetInt32());
        Assert.Equal(Dimension, collections["docs"].GetProperty("dimension").GetInt32());
        Assert.Equal(before, await SearchAsync(restarted, "docs"));
    }

    [Fact]
    public async Task Restart_OnWorkers_TheWorkersLoadEveryCollectionFromTheRepository()
    {
        var settings = new Dictionary<string, string?> { ["Server:Workers"] = "2", ["Tandem:Remote:DrainGrace"] = "00:00:05" };
        string before;
        using (var first = Server(settings))
        {
            using var client = await ReadyClientAsync(first);
            await client.CreateCollectionAsync("docs", Rows);
            before = await SearchAsync(client, "docs");
        }

        // A restart on workers serves the collection stored by the first run,
        // and so does an in-process server on the same directory.
        using (var second = Server(settings))
        {
            using var restarted = await ReadyClientAsync(second);
            Assert.Equal(before, await SearchAsync(restarted, "docs"));
            var backend = (await (await restarted.GetAsync("/collections/docs")).ReadJsonAsync()).GetProperty("backend").GetString();
            Assert.Equal("remote", backend);
        }

        using var native = Server();
        using var inProcess = await ReadyClientAsync(native);
        Assert.Equal(before, await SearchAsync(inProcess, "docs"));
    }

    [Fact]
    public async Task Drop_RemovesTheStoredFile_SoARestartDoesNotBringItBack()
    {
        using (var first = Server())
        {
            using var client = await ReadyClientAsync(first);
            await client.CreateCollectionAsync("gone", Rows);
            Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/collections/gone")).StatusCode);
            Assert.False(Directory.Exists(Path.Combine(_repository.Root, "collection.gone")));
            // The name is free again.
            await client.CreateCollectionAsync("gone", Rows[..10]);
            Assert.True(File.Exists(_repository.FileOf("collection.gone", 1)));
            Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/collections/gone")).StatusCode);
        }

        using var second = Server();
        using var restarted = await ReadyClientAsync(second);
        Assert.Equal(0, (await (await restarted.GetAsync("/collections")).ReadJsonAsync()).GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await restarted.PostAsync("/collections/gone/search", Http.Json(JsonSerializer.Serialize(new { query = Query, k = 3 })))).StatusCode);
    }

    [Fact]
    public async Task Restart_WithADamagedFile_RefusesItAndServesTheRest()
    {
        using (var first = Server())
        {
            using var client = await ReadyClientAsync(first);
            await client.CreateCollectionAsync("good", Rows);
            await client.CreateCollectionAsync("bad", Rows);
        }

        await _repository.CorruptAsync("collection.bad", 1, offset: -100);
        var damaged = _repository.FileOf("collection.bad", 1);

        using var second = Server();
        using var restarted = await ReadyClientAsync(second);
        var names = (await (await restarted.GetAsync("/collections")).ReadJsonAsync()).EnumerateArray().Select(c => c.GetProperty("name").GetString());
        Assert.Equal(["good"], names);
        Assert.Equal(HttpStatusCode.NotFound, (await restarted.PostAsync("/collections/bad/search", Http.Json(JsonSerializer.Serialize(new { query = Query, k = 3 })))).StatusCode);
        // The damaged file is left for the operator (never overwritten), and
        // the name stays taken in the repository until it is removed.
        Assert.True(File.Exists(damaged));
    }

    [Fact]
    public async Task TwoServers_OneRepository_CreatingOneNameAtOnce_OneWinsTheOtherGets409()
    {
        using var a = Server();
        using var b = Server();
        using var clientA = await ReadyClientAsync(a);
        using var clientB = await ReadyClientAsync(b);

        var responses = await Task.WhenAll(
            clientA.PostAsync("/collections", Http.Collection("race", Rows)),
            clientB.PostAsync("/collections", Http.Collection("race", Rows)));

        var codes = responses.Select(r => r.StatusCode).Order().ToArray();
        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Conflict], codes);
        var conflict = await responses.Single(r => r.StatusCode == HttpStatusCode.Conflict).Content.ReadAsStringAsync();
        Assert.Contains("already exists", conflict);
        Assert.Single(Directory.GetFiles(Path.Combine(_repository.Root, "collection.race"), "*.tstate"));
        foreach (var response in responses)
        {
            response.Dispose();
        }

        // Afterwards the name stays taken on both, whichever wrote it.
        foreach (var client in new[] { clientA, clientB })
        {
            using var again = await client.PostAsync("/collections", Http.Collection("race", Rows));
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }
    }

    [Fact]
    public async Task TwoServers_OneRepository_EachServesWhatTheOtherCreates_AndDropsWhatItDrops()
    {
        var fast = new Dictionary<string, string?> { ["Server:Collections:RepositorySyncInterval"] = "00:00:00.100" };
        using var a = Server(fast);
        using var b = Server(fast);
        using var clientA = await ReadyClientAsync(a);
        using var clientB = await ReadyClientAsync(b);

        await clientA.CreateCollectionAsync("shared", Rows);
        var onA = await SearchAsync(clientA, "shared");
        await Poll.UntilAsync(async () => (await clientB.GetAsync("/collections/shared")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30));
        Assert.Equal(onA, await SearchAsync(clientB, "shared"));

        Assert.Equal(HttpStatusCode.NoContent, (await clientB.DeleteAsync("/collections/shared")).StatusCode);
        await Poll.UntilAsync(async () => (await clientA.GetAsync("/collections/shared")).StatusCode == HttpStatusCode.NotFound, TimeSpan.FromSeconds(30));
        // And the name is free for either again.
        await clientA.CreateCollectionAsync("shared", Rows[..20]);
        await Poll.UntilAsync(async () => (await clientB.GetAsync("/collections/shared")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(30));
        var count = (await (await clientB.GetAsync("/collections/shared")).ReadJsonAsync()).GetProperty("count").GetInt32();
        Assert.Equal(20, count);
    }

    private ServerFactory Server(Dictionary<string, string?>? settings = null) =>
        new(new Dictionary<string, string?>(settings ?? []) { ["Tandem:StateRepository"] = _repository.Root });

    private static async Task<HttpClient> ReadyClientAsync(ServerFactory factory)
    {
        var client = factory.CreateClient();
        await Poll.UntilAsync(async () => (await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60));
        return client;
    }

    private static async Task<string> SearchAsync(HttpClient client, string name)
    {
        using var response = await client.PostAsync($"/collections/{name}/search", Http.Json(JsonSerializer.Serialize(new { query = Query, k = 5, metric = "cosine" })));
        var body = await response.ReadJsonAsync();
        return body.GetProperty("results").GetRawText();
    }
}
