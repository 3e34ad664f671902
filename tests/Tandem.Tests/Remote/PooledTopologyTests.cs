using Tandem.Remote;
using Tandem.Remote.Internal.Supervision;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>Workers managed elsewhere (RemoteOptions.Endpoints), restarted behind the client's back.</summary>
[Collection(WorkerSupervisionTests.Name)]
public sealed class PooledTopologyTests
{
    private const int Dim = 8;

    [Fact]
    public async Task StartAsync_EndpointNotServingYet_JoinsWhenItComesUp()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-pooled-");
        var options = new RemoteOptions();
        var late = Path.Combine(sockets.FullName, "late.sock");
        WorkerProcess? first = null;
        WorkerProcess? second = null;
        try
        {
            first = WorkerProcess.Start(WorkerBinary.Path, options, sockets.FullName, "early", null);
            var address = await first.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            await using var host = new RemoteTestHost(o =>
            {
                o.Endpoints.Add(address);
                o.Endpoints.Add("unix:" + late);
                o.StartTimeout = TimeSpan.FromSeconds(1);
                o.EjectionProbeInterval = TimeSpan.FromMilliseconds(100);
            });
            Assert.Single(await host.StartAsync());

            second = WorkerProcess.Start(WorkerBinary.Path, options, sockets.FullName, "late", null, socketPath: late);
            await second.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);

            await host.Eventually(() => host.Admin.Workers.Count(w => w.Status == WorkerStatus.Serving) == 2, "the late endpoint joins");
        }
        finally
        {
            first?.Dispose();
            second?.Dispose();
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task CreateCollectionAsync_NoEndpointServingAtStart_FailsUnavailableUntilOneComesUp()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-pooled-");
        var late = Path.Combine(sockets.FullName, "late.sock");
        WorkerProcess? worker = null;
        try
        {
            await using var host = new RemoteTestHost(o =>
            {
                o.Endpoints.Add("unix:" + late);
                o.StartTimeout = TimeSpan.FromSeconds(1);
                o.EjectionProbeInterval = TimeSpan.FromMilliseconds(100);
            });
            // The start completes with no worker rather than failing, so the
            // next calls are refused at once instead of each waiting again.
            Assert.Empty(await host.StartAsync());
            var vectors = TestData.Integers(50, Dim, seed: 1);
            var refused = await Assert.ThrowsAsync<TandemException>(() => host.Search.CreateCollectionAsync("c", vectors, Dim).AsTask());
            Assert.Equal(TandemStatusCode.Unavailable, refused.Code);
            Assert.Empty(host.Search.Collections);

            worker = WorkerProcess.Start(WorkerBinary.Path, new RemoteOptions(), sockets.FullName, "late", null, socketPath: late);
            await worker.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            await host.Eventually(() => host.Admin.Workers.Any(w => w.Status == WorkerStatus.Serving), "the endpoint joins once it serves");

            var created = await host.Search.CreateCollectionAsync("c", vectors, Dim);
            Assert.Equal(BackendKind.Remote, created.Backend);
        }
        finally
        {
            worker?.Dispose();
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TopKAsync_ExternalWorkerRestartedInPlace_StateReplayedAndCallsSucceed()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-pooled-");
        var socket = Path.Combine(sockets.FullName, "w.sock");
        var options = new RemoteOptions();
        WorkerProcess? first = null;
        WorkerProcess? second = null;
        try
        {
            first = WorkerProcess.Start(WorkerBinary.Path, options, sockets.FullName, "w", "first", socketPath: socket);
            var address = await first.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            await using var host = new RemoteTestHost(o => o.Endpoints.Add(address));
            var before = (await host.StartAsync()).Single();
            // Workers run elsewhere are restarted and upgraded there.
            Assert.Contains("managed elsewhere", (await Assert.ThrowsAsync<InvalidOperationException>(() => host.Admin.RestartAsync(before.Name))).Message);
            await Assert.ThrowsAsync<InvalidOperationException>(() => host.Admin.RollingUpgradeAsync());
            await host.Search.CreateCollectionAsync("c", TestData.Integers(500, Dim, seed: 1), Dim);
            var query = TestData.Integers(2, Dim, seed: 2);
            var expected = await host.Search.TopKAsync("c", query, 3);

            RemoteTestHost.Signal(first.Id, Signals.Kill);
            await first.Exited;
            File.Delete(socket);
            second = WorkerProcess.Start(WorkerBinary.Path, options, sockets.FullName, "w", "second", socketPath: socket);
            await second.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);

            await host.Eventually(
                () => host.Admin.Workers.Single() is { Status: WorkerStatus.Serving } w && w.InstanceId != before.InstanceId,
                "the client sees the new process serving");
            var after = await host.Search.TopKAsync("c", query, 3);

            Assert.Equal(expected.Ids, after.Ids);
            Assert.EndsWith("+second", host.Admin.Workers.Single().Version);
        }
        finally
        {
            first?.Dispose();
            second?.Dispose();
            sockets.Delete(recursive: true);
        }
    }
}
