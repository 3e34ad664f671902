using Tandem.Remote;
using Tandem.Remote.Internal.Supervision;
using Tandem.Similarity;
using Tandem.Tests.Shared;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// Stored states on real tandem-worker processes started with the client's
/// state repository (<c>--repository</c>): the workers load a stored
/// collection by name — the client keeps no copy of its vectors, neither in
/// memory nor in shared memory — and a worker that crashes gets it back the
/// same way, answering as before; a file stored in process loads on the
/// workers and answers as it did there.
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
public sealed class RemoteStoredStateTests : IDisposable
{
    private const int Dim = 16;
    private static readonly float[] Vectors = TestData.Integers(5000, Dim, seed: 9);
    private static readonly float[] Queries = TestData.Integers(4, Dim, seed: 10);

    private readonly TempStateRepository _repository = new();

    public void Dispose() => _repository.Dispose();

    [Theory]
    [InlineData(RemoteFastPath.Auto)]
    [InlineData(RemoteFastPath.Off)]
    public async Task StoredCollection_WorkersLoadItByName_AndARestartedWorkerLoadsItAgain(RemoteFastPath fastPath)
    {
        await using var host = new RemoteTestHost(
            o =>
            {
                o.RestartBackoff = TimeSpan.FromMilliseconds(50);
                o.FastPath = fastPath;
            },
            tandem: o => o.StateRepository = _repository.Root);
        var before = await host.StartAsync();

        var info = await host.Search.StoreCollectionAsync("c", "docs", 1, Vectors, Dim);
        Assert.Equal((BackendKind.Remote, 1L, 5000), (info.Backend, info.StoredVersion, info.Count));
        var state = Assert.Single(host.Client.Pool.States);
        Assert.Equal(("docs", 1UL), (state.Request.Stored.Name, state.Request.Stored.Version));
        Assert.Empty(state.Request.Tensors);
        Assert.Null(state.Region);
        var expected = await host.Search.TopKAsync("c", Queries, 5);

        var victim = before[0];
        RemoteTestHost.Signal(victim.ProcessId!.Value, Signals.Kill);
        // Replaced, and the replacement (in the pool under the victim's name) holds the state again.
        await host.Eventually(
            () => host.Admin.Workers.Count == 2 && host.Admin.Workers.All(w => w.Status == WorkerStatus.Serving) && host.Admin.Workers.All(w => w.InstanceId != victim.InstanceId)
                && host.Client.Pool.Workers.Any(w => w.Name == victim.Name && w.States.Count == 1),
            "the killed worker is replaced and loads the state");
        for (var i = 0; i < 4; i++)
        {
            var again = await host.Search.TopKAsync("c", Queries, 5);
            Assert.Equal(expected.Ids, again.Ids);
            Assert.Equal(expected.Scores, again.Scores);
        }
    }

    [Fact]
    public async Task ACollectionStoredInProcess_LoadsOnTheWorkers_WithTheSameAnswers()
    {
        TopKResult inProcess;
        await using (var native = new RemoteTestHost(tandem: o =>
        {
            o.Backend = BackendKind.Native;
            o.StateRepository = _repository.Root;
        }))
        {
            await native.Search.StoreCollectionAsync("c", "docs", 3, Vectors, Dim);
            inProcess = await native.Search.TopKAsync("c", Queries, 5);
            Assert.Equal(BackendKind.Native, inProcess.Backend);
        }

        await using var host = new RemoteTestHost(tandem: o => o.StateRepository = _repository.Root);
        await host.StartAsync();
        var info = await host.Search.LoadCollectionAsync("c", "docs");
        Assert.Equal((BackendKind.Remote, 3L, 5000, Dim), (info.Backend, info.StoredVersion, info.Count, info.Dimension));
        Assert.Empty(Assert.Single(host.Client.Pool.States).Request.Tensors);
        var remote = await host.Search.TopKAsync("c", Queries, 5);
        Assert.Equal(BackendKind.Remote, remote.Backend);
        Assert.Equal(inProcess.Ids, remote.Ids);
        Assert.Equal(inProcess.Scores, remote.Scores);

        var error = await Assert.ThrowsAsync<TandemException>(() => host.Search.LoadCollectionAsync("d", "docs", 4).AsTask());
        Assert.Equal(TandemStatusCode.NotFound, error.Code);
        Assert.Contains("version(s) 3", error.Message);
    }
}
