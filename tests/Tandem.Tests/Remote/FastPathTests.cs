using Tandem.Remote;
using Tandem.Remote.Internal.Supervision;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// The local fast path from the client's side: negotiated per worker at
/// connect (Unix-socket workers that offer it use it, everything else keeps
/// gRPC), turned off by <see cref="RemoteOptions.FastPath"/>, replaced in the
/// background when its connection closes, and cancelled calls freed at once.
/// The failure behaviour both transports share (kill, stop, deadlines,
/// shared memory) is in <see cref="WorkerSupervisionTests"/>, run over each.
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
public sealed class FastPathTests
{
    private const int Dim = 8;
    private static readonly float[] Vectors = TestData.Integers(500, Dim, seed: 3);

    [Fact]
    public async Task TopKAsync_SupervisedUnixSocketWorkers_CallsGoOverTheFastPath()
    {
        await using var host = new RemoteTestHost();
        await host.StartAsync();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);

        var result = await host.Search.TopKAsync("c", TestData.Integers(1, Dim, seed: 4), 3);

        Assert.Equal(3, result.Ids.Length);
        Assert.All(host.Client.Pool.Workers, w => Assert.True(w.UsesFastPath, $"{w.Name} does not use the fast path"));
        Assert.Equal(1, host.Client.Pool.Workers.Sum(w => w.FastPathCalls));
    }

    [Fact]
    public async Task TopKAsync_FastPathOff_WorkersOfferNoneAndCallsUseGrpc()
    {
        await using var host = new RemoteTestHost(o => o.FastPath = RemoteFastPath.Off);
        await host.StartAsync();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);

        await host.Search.TopKAsync("c", TestData.Integers(1, Dim, seed: 4), 3);

        Assert.All(host.Client.Pool.Workers, w =>
        {
            Assert.False(w.UsesFastPath);
            Assert.Equal(0, w.FastPathCalls);
            Assert.Equal("", w.Description!.FastPathSocket);
        });
    }

    [Fact]
    public async Task TopKAsync_TcpWorkers_KeepGrpc()
    {
        await using var host = new RemoteTestHost(o =>
        {
            o.WorkerCount = 1;
            o.Transport = RemoteTransport.Tcp;
        });
        var worker = (await host.StartAsync()).Single();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);

        await host.Search.TopKAsync("c", TestData.Integers(1, Dim, seed: 4), 3);

        var connection = host.Client.Pool.Workers.Single();
        Assert.StartsWith("http://", worker.Address);
        Assert.Equal("", connection.Description!.FastPathSocket);
        Assert.Equal(0, connection.FastPathCalls);
    }

    [Fact]
    public async Task TopKAsync_EndpointWithoutAFastPath_KeepsGrpcAndAnswersTheSame()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-fast-");
        WorkerProcess? plain = null;
        WorkerProcess? fast = null;
        try
        {
            // An older worker, or one started with --fast-path off, offers none in Describe.
            plain = WorkerProcess.Start(WorkerBinary.Path, new RemoteOptions { FastPath = RemoteFastPath.Off }, sockets.FullName, "plain", null);
            fast = WorkerProcess.Start(WorkerBinary.Path, new RemoteOptions(), sockets.FullName, "fast", null);
            var plainAddress = await plain.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            var fastAddress = await fast.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None);
            await using var host = new RemoteTestHost(o =>
            {
                o.Endpoints.Add(plainAddress);
                o.Endpoints.Add(fastAddress);
            });
            await host.StartAsync();
            await host.Search.CreateCollectionAsync("c", Vectors, Dim);
            var query = TestData.Integers(2, Dim, seed: 5);

            var results = new List<int[]>();
            for (var i = 0; i < 20; i++)
            {
                results.Add([.. (await host.Search.TopKAsync("c", query, 4)).Ids.Select(id => (int)id)]);
            }

            var byName = host.Client.Pool.Workers.ToDictionary(w => w.Address);
            Assert.False(byName[plainAddress].UsesFastPath);
            Assert.Equal(0, byName[plainAddress].FastPathCalls);
            Assert.True(byName[fastAddress].UsesFastPath);
            Assert.True(byName[plainAddress].Info.Completed > 0 && byName[fastAddress].Info.Completed > 0, "both workers served calls");
            Assert.All(results, r => Assert.Equal(results[0], r));
        }
        finally
        {
            plain?.Dispose();
            fast?.Dispose();
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TopKAsync_FastPathConnectionClosed_NextCallsUseGrpcAndItReconnects()
    {
        await using var host = new RemoteTestHost(o => o.WorkerCount = 1);
        await host.StartAsync();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var worker = host.Client.Pool.Workers.Single();
        var query = TestData.Integers(1, Dim, seed: 6);
        var expected = await host.Search.TopKAsync("c", query, 3);
        Assert.True(worker.UsesFastPath);

        worker.CloseFastPath("closed by the test");
        var afterClose = await host.Search.TopKAsync("c", query, 3);

        Assert.Equal(expected.Ids, afterClose.Ids);
        Assert.Equal(1, worker.FastPathCalls);
        // The call just made asked for a new connection; it comes in the background.
        await worker.WhenFastPathConnected().WaitAsync(TimeSpan.FromSeconds(30));
        var calls = worker.FastPathCalls;
        Assert.Equal(expected.Ids, (await host.Search.TopKAsync("c", query, 3)).Ids);
        Assert.Equal(calls + 1, worker.FastPathCalls);
    }

    [Theory]
    [InlineData(RemoteFastPath.Auto)]
    [InlineData(RemoteFastPath.Off)]
    public async Task TopKAsync_CallerCancelsWhileTheWorkerIsStopped_CancelledAtOnceAndTheWorkerServesAfter(RemoteFastPath fastPath)
    {
        await using var host = new RemoteTestHost(
            o =>
            {
                o.WorkerCount = 1;
                o.FastPath = fastPath;
            },
            tandem: o => o.Batching.Enabled = false);
        var worker = (await host.StartAsync()).Single();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var query = TestData.Integers(1, Dim, seed: 7);
        using var cts = new CancellationTokenSource();
        RemoteTestHost.Signal(worker.ProcessId!.Value, Signals.Stop);
        try
        {
            var calling = host.Search.TopKAsync("c", query, 3, cancellationToken: cts.Token);
            await host.Eventually(() => host.Client.Pool.Workers.Single().InFlight == 1, "the call reaches the stopped worker");
            await cts.CancelAsync();
            var error = await Assert.ThrowsAnyAsync<Exception>(() => calling.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));

            Assert.True(error is OperationCanceledException or TandemException { Code: TandemStatusCode.Cancelled }, error.ToString());
            Assert.Equal(0, host.Client.Pool.Workers.Single().InFlight);
        }
        finally
        {
            RemoteTestHost.Signal(worker.ProcessId.Value, Signals.Cont);
        }

        Assert.Equal(3, (await host.Search.TopKAsync("c", query, 3)).Ids.Length);
        Assert.Equal(fastPath == RemoteFastPath.Auto, host.Client.Pool.Workers.Single().FastPathCalls > 0);
    }
}
