using Microsoft.Extensions.DependencyInjection;
using Tandem.Kernels;
using Tandem.Remote;
using Tandem.Tests.Kernels;
using Tandem.Remote.Internal.Supervision;
using Tandem.Similarity;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// The pool and its supervisor against real tandem-worker processes: crash,
/// stop, rolling upgrade, shared memory and cleanup. Each test runs its own
/// workers; the collection keeps these tests from running side by side. The
/// faults, deadlines and shared memory run over both transports: the fast
/// path (the default for these Unix-socket workers) and gRPC.
/// </summary>
[Collection(Name)]
public sealed class WorkerSupervisionTests
{
    public const string Name = "Remote supervision";
    private const int Dim = 16;
    private static readonly float[] Vectors = TestData.Integers(2000, Dim, seed: 5);

    [Theory]
    [InlineData(RemoteFastPath.Auto)]
    [InlineData(RemoteFastPath.Off)]
    public async Task KillWorker_UnderLoad_EveryCallCompletes(RemoteFastPath fastPath)
    {
        // Unbatched, so each of the 200 calls is its own request.
        await using var host = new RemoteTestHost(
            o =>
            {
                o.RestartBackoff = TimeSpan.FromMilliseconds(50);
                o.FastPath = fastPath;
            },
            fallback: true,
            tandem: o => o.Batching.Enabled = false);
        var before = await host.StartAsync();
        AssertTransport(host, fastPath);
        await host.Search.CreateCollectionAsync("c", TestData.Integers(200_000, Dim, seed: 6), Dim);
        var queries = Enumerable.Range(0, 200).Select(i => TestData.Integers(1, Dim, seed: 100 + i)).ToArray();
        var expected = await Task.WhenAll(queries.Select(q => host.Search.TopKAsync("c", q, 5).AsTask()));

        var victim = before[0];
        var victimConnection = host.Client.Pool.Workers.Single(w => w.Name == victim.Name);
        var calls = queries.Select(q => host.Search.TopKAsync("c", q, 5).AsTask()).ToArray();
        await host.Eventually(() => victimConnection.InFlight > 0, "the victim has calls in flight");
        RemoteTestHost.Signal(victim.ProcessId!.Value, Signals.Kill);
        var results = await Task.WhenAll(calls);

        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal(expected[i].Ids, results[i].Ids);
        }

        // Calls were lost with the worker and recovered elsewhere.
        Assert.True(victimConnection.Info.Failed > 0, "no call failed on the killed worker");

        // The crashed worker is restarted, holds the collection again and serves.
        await host.Eventually(
            () => host.Admin.Workers.Count == 2 && host.Admin.Workers.All(w => w.Status == WorkerStatus.Serving) && host.Admin.Workers.All(w => w.InstanceId != victim.InstanceId),
            "the killed worker is replaced");
        Assert.False(RemoteTestHost.IsAlive(victim.ProcessId.Value));
        var replacement = host.Client.Pool.Workers.Single(w => w.Name == victim.Name);
        Assert.Single(replacement.States);
        Assert.Equal(fastPath == RemoteFastPath.Auto, replacement.UsesFastPath);
    }

    [Theory]
    [InlineData(RemoteFastPath.Auto)]
    [InlineData(RemoteFastPath.Off)]
    public async Task StopWorker_CallsFailOverAndItRejoinsAfterContinue(RemoteFastPath fastPath)
    {
        await using var host = new RemoteTestHost(o =>
        {
            o.CallDeadline = TimeSpan.FromMilliseconds(500);
            o.EjectionConsecutiveFailures = 2;
            o.EjectionProbeInterval = TimeSpan.FromMilliseconds(200);
            o.FastPath = fastPath;
        });
        var workers = await host.StartAsync();
        AssertTransport(host, fastPath);
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var stopped = workers[0];
        RemoteTestHost.Signal(stopped.ProcessId!.Value, Signals.Stop);
        try
        {
            // Calls routed to the stopped worker miss their deadline and are
            // retried on the other; after two misses it leaves routing.
            var query = TestData.Integers(1, Dim, seed: 7);
            for (var call = 0; Status(host, stopped.Name) != WorkerStatus.Ejected; call++)
            {
                Assert.True(call < 50, "the stopped worker was not ejected after 50 calls");
                await host.Search.TopKAsync("c", query, 3);
            }

            var servedBefore = Info(host, stopped.Name).Completed;
            for (var i = 0; i < 20; i++)
            {
                await host.Search.TopKAsync("c", query, 3);
            }

            Assert.Equal(servedBefore, Info(host, stopped.Name).Completed);

            // Created while the worker is out: it gets the collection on re-admission.
            await host.Search.CreateCollectionAsync("later", Vectors, Dim);
        }
        finally
        {
            RemoteTestHost.Signal(stopped.ProcessId.Value, Signals.Cont);
        }

        await host.Eventually(() => Status(host, stopped.Name) == WorkerStatus.Serving, "the continued worker is re-admitted");
        Assert.Equal(stopped.InstanceId, Info(host, stopped.Name).InstanceId);
        Assert.Equal(2, host.Client.Pool.Workers.Single(w => w.Name == stopped.Name).States.Count);
    }

    [Theory]
    [InlineData(RemoteFastPath.Auto)]
    [InlineData(RemoteFastPath.Off)]
    public async Task StoppedOnlyWorker_CallMissesItsDeadline_DeadlineExceededNamingTheSetting(RemoteFastPath fastPath)
    {
        await using var host = new RemoteTestHost(o =>
        {
            o.WorkerCount = 1;
            o.CallDeadline = TimeSpan.FromMilliseconds(300);
            o.RetriesOnOtherWorkers = 0;
            o.FastPath = fastPath;
        });
        var workers = await host.StartAsync();
        AssertTransport(host, fastPath);
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        RemoteTestHost.Signal(workers[0].ProcessId!.Value, Signals.Stop);
        try
        {
            var error = await Assert.ThrowsAsync<TandemException>(() => host.Search.TopKAsync("c", TestData.Integers(1, Dim, seed: 7), 3).AsTask());

            Assert.Equal(TandemStatusCode.DeadlineExceeded, error.Code);
            Assert.Contains("did not answer within Tandem:Remote:CallDeadline (300 ms)", error.Message);
        }
        finally
        {
            RemoteTestHost.Signal(workers[0].ProcessId!.Value, Signals.Cont);
        }
    }

    [Fact]
    public async Task RollingUpgrade_UnderLoad_NoFailedCallAndEveryWorkerReplaced()
    {
        await using var host = new RemoteTestHost(o => o.BuildId = "v1");
        var before = await host.StartAsync();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var query = TestData.Integers(4, Dim, seed: 9);
        var expected = await host.Search.TopKAsync("c", query, 5);

        using var stop = new CancellationTokenSource();
        var failures = 0;
        var completed = 0;
        var load = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var result = await host.Search.TopKAsync("c", query, 5);
                    Assert.Equal(expected.Ids, result.Ids);
                    Interlocked.Increment(ref completed);
                }
                catch (Exception)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();

        await host.Admin.RollingUpgradeAsync();
        stop.Cancel();
        await Task.WhenAll(load);

        Assert.Equal(0, failures);
        Assert.True(completed > 0);
        var after = host.Admin.Workers;
        Assert.Equal(2, after.Count);
        Assert.All(after, w => Assert.DoesNotContain(before, b => b.InstanceId == w.InstanceId));
        Assert.All(after, w => Assert.DoesNotContain(before, b => b.Version == w.Version));
        Assert.All(before, w => Assert.False(RemoteTestHost.IsAlive(w.ProcessId!.Value)));
    }

    [Fact]
    public async Task RestartAsync_OneWorker_ReplacedWithItsStatesAndTheOtherUntouched()
    {
        await using var host = new RemoteTestHost();
        var before = await host.StartAsync();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);

        await host.Admin.RestartAsync("w0");

        var after = host.Admin.Workers;
        Assert.NotEqual(before.Single(w => w.Name == "w0").InstanceId, after.Single(w => w.Name == "w0").InstanceId);
        Assert.Equal(before.Single(w => w.Name == "w1").InstanceId, after.Single(w => w.Name == "w1").InstanceId);
        Assert.All(host.Client.Pool.Workers, w => Assert.Single(w.States));
        await Assert.ThrowsAsync<InvalidOperationException>(() => host.Admin.RestartAsync("nope"));
    }

    [Fact]
    public async Task StartAsync_KernelLibrariesConfigured_EveryWorkerServesTheLibrarysKernels()
    {
        var fixture = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
        await using var host = new RemoteTestHost(o => o.KernelLibraries.Add(fixture));

        await host.StartAsync();

        Assert.All(host.Client.Pool.Workers, w =>
        {
            var scale = w.Description!.KernelSet.Kernels.Single(k => k.Name == "fixture.scale");
            Assert.Equal("tandem-fixture-kernels", scale.Library);
            Assert.Equal(32, scale.Hash.Length);
            Assert.Contains(w.Description.KernelSet.Kernels, k => k.Name == "similarity.topk" && k.Library == "tandem");
        });
    }

    [Fact]
    public async Task InvokeAsync_UserKernelOnSupervisedWorkers_RunsRemoteCheckedByHash()
    {
        var fixture = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
        await using var host = new RemoteTestHost(o => o.KernelLibraries.Add(fixture), services: s => s.AddKernelContracts(FixtureKernels.Contracts));
        await host.StartAsync();
        var invoker = host.Services.GetRequiredService<IKernelInvoker>();

        var result = await invoker.InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1, 2, 3 }, 3).Param("factor", -2.0));

        Assert.Equal(BackendKind.Remote, result.Backend);
        Assert.Equal(new double[] { -2, -4, -6 }, result.Output<double>("y").ToArray());
        Assert.Null(host.Client.Pool.Refusal(FixtureKernels.FixtureScale.Name));
    }

    [Fact]
    public async Task InvokeAsync_UserKernelTheWorkersLack_RefusedNamingTheKernel()
    {
        await using var host = new RemoteTestHost(services: s => s.AddKernelContracts(FixtureKernels.Contracts));
        await host.StartAsync();
        var invoker = host.Services.GetRequiredService<IKernelInvoker>();

        var error = await Assert.ThrowsAsync<TandemException>(() => invoker.InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1 }, 1)).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("has no kernel 'fixture.scale'", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_WorkersServeAnotherContractOfTheKernel_RefusedNamingBothHashes()
    {
        // The host was generated from a fixture.scale whose factor range differs
        // from what the workers' library publishes.
        var fixture = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
        var changed = new Tandem.Contracts.V1.KernelSet { LibraryName = FixtureKernels.LibraryName, AbiVersion = FixtureKernels.AbiMajor << 16 };
        changed.Kernels.Add(FixtureKernels.FixtureScale.Contract.Descriptor.Clone());
        changed.Kernels[0].Params[0].Max = 10;
        changed.Kernels[0].Hash = Tandem.Internal.Contracts.KernelContracts.HashOf(changed.Kernels[0], changed);
        await using var host = new RemoteTestHost(o => o.KernelLibraries.Add(fixture), services: s => s.AddKernelContracts(new KernelContractSet(changed)));
        await host.StartAsync();
        var invoker = host.Services.GetRequiredService<IKernelInvoker>();

        var error = await Assert.ThrowsAsync<TandemException>(() => invoker.InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1 }, 1)).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains($"reports descriptor hash {FixtureKernels.FixtureScale.Hash}", error.Message);
        Assert.Contains($"generated from {changed.Kernels[0].Hash}", error.Message);
    }

    [Fact]
    public async Task RollingUpgradeAsync_NewKernelLibrarySet_SuccessorsServeIt()
    {
        var fixture = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
        await using var host = new RemoteTestHost();
        await host.StartAsync();
        Assert.All(host.Client.Pool.Workers, w => Assert.DoesNotContain(w.Description!.KernelSet.Kernels, k => k.Name == "fixture.scale"));

        await host.Client.Supervisor!.RollingUpgradeAsync(null, CancellationToken.None, kernelLibraries: [fixture]);

        Assert.All(host.Client.Pool.Workers, w => Assert.Contains(w.Description!.KernelSet.Kernels, k => k.Name == "fixture.scale"));
    }

    [Fact]
    public async Task RollingUpgradeAsync_MissingBinary_RefusedAndWorkersUntouched()
    {
        await using var host = new RemoteTestHost();
        var before = await host.StartAsync();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => host.Admin.RollingUpgradeAsync(Path.Combine(Path.GetTempPath(), $"missing-worker-{Guid.NewGuid():N}")));

        Assert.Contains("does not exist", error.Message);
        Assert.Equal(before.Select(w => w.InstanceId), host.Admin.Workers.Select(w => w.InstanceId));
    }

    [Fact]
    public async Task RollingUpgradeAsync_BinaryThatIsNotAWorker_FailsAndTheOldWorkersKeepServing()
    {
        await using var host = new RemoteTestHost(o => o.StartTimeout = TimeSpan.FromSeconds(10));
        var before = await host.StartAsync();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var query = TestData.Integers(2, Dim, seed: 12);
        var expected = await host.Search.TopKAsync("c", query, 3);

        await Assert.ThrowsAsync<InvalidOperationException>(() => host.Admin.RollingUpgradeAsync("/bin/false"));

        Assert.Equal(before.Select(w => w.InstanceId), host.Admin.Workers.Select(w => w.InstanceId));
        Assert.All(host.Admin.Workers, w => Assert.Equal(WorkerStatus.Serving, w.Status));
        Assert.Equal(expected.Ids, (await host.Search.TopKAsync("c", query, 3)).Ids);
    }

    [Theory]
    [InlineData(RemoteFastPath.Auto)]
    [InlineData(RemoteFastPath.Off)]
    public async Task TopKAsync_AboveSharedMemoryThreshold_UsesRegionAndMatchesInline(RemoteFastPath fastPath)
    {
        const int BigDim = 512;
        var vectors = TestData.Integers(300, BigDim, seed: 3);
        var queries = TestData.Integers(64, BigDim, seed: 4); // 128 KiB: above the 64 KiB default
        TopKResult viaSharedMemory;
        TopKResult inline;
        await using (var shared = new RemoteTestHost(o =>
        {
            o.WorkerCount = 1;
            o.FastPath = fastPath;
        }))
        {
            await shared.StartAsync();
            AssertTransport(shared, fastPath);
            await shared.Search.CreateCollectionAsync("c", vectors, BigDim);
            viaSharedMemory = await shared.Search.TopKAsync("c", queries, 10);
            Assert.True(shared.Client.Pool.SharedMemory.Rentals > 0);
            Assert.Equal(fastPath == RemoteFastPath.Auto, shared.Client.Pool.Workers.Single().FastPathCalls > 0);
            var worker = shared.Client.Pool.Workers.Single();
            var regions = await worker.Client.ListSharedMemoryAsync(new Tandem.Contracts.V1.ListSharedMemoryRequest());
            Assert.Contains(regions.Regions, r => r.Name.StartsWith(shared.Client.Pool.SharedMemory.Prefix, StringComparison.Ordinal));
        }

        await using (var small = new RemoteTestHost(o =>
        {
            o.WorkerCount = 1;
            o.SharedMemoryThresholdBytes = int.MaxValue;
            o.FastPath = fastPath;
        }))
        {
            await small.Search.CreateCollectionAsync("c", vectors, BigDim);
            inline = await small.Search.TopKAsync("c", queries, 10);
            Assert.Equal(0, small.Client.Pool.SharedMemory.Rentals);
        }

        Assert.Equal(inline.Ids, viaSharedMemory.Ids);
        Assert.Equal(inline.Scores, viaSharedMemory.Scores);
    }

    [Fact]
    public async Task Dispose_AfterUse_LeavesNoProcessSocketOrSharedMemory()
    {
        var host = new RemoteTestHost();
        IReadOnlyList<WorkerInfo> workers;
        string sockets;
        string prefix;
        try
        {
            workers = await host.StartAsync();
            sockets = host.Client.SocketDirectory!;
            prefix = host.Client.Pool.SharedMemory.Prefix;
            await host.Search.CreateCollectionAsync("big", TestData.Integers(5000, 64, seed: 1), 64);
            await host.Search.TopKAsync("big", TestData.Integers(512, 64, seed: 2), 3);
            Assert.NotEmpty(Directory.GetFiles("/dev/shm", prefix + "*"));
            Assert.NotEmpty(Directory.GetFileSystemEntries(sockets));
        }
        finally
        {
            await host.DisposeAsync();
        }

        Assert.All(workers, w => Assert.False(RemoteTestHost.IsAlive(w.ProcessId!.Value)));
        Assert.False(Directory.Exists(sockets));
        Assert.Empty(Directory.GetFiles("/dev/shm", prefix + "*"));
    }

    [Fact]
    public async Task TopKAsync_NoWorkerLeft_FallsBackToNativeWithTheSameCollection()
    {
        await using var host = new RemoteTestHost(
            o =>
            {
                o.WorkerCount = 1;
                o.RestartBackoff = TimeSpan.FromMinutes(5);
            },
            fallback: true);
        var worker = (await host.StartAsync()).Single();
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var query = TestData.Integers(3, Dim, seed: 8);
        var remote = await host.Search.TopKAsync("c", query, 4);

        RemoteTestHost.Signal(worker.ProcessId!.Value, Signals.Kill);
        await host.Eventually(() => host.Admin.Workers.Count == 0, "the dead worker leaves the pool");
        var fallback = await host.Search.TopKAsync("c", query, 4);

        Assert.Equal(remote.Ids, fallback.Ids);
        Assert.Equal(remote.Scores, fallback.Scores);
    }

    [Fact]
    public async Task TopKAsync_OverTcp_MatchesUnixSocket()
    {
        var query = TestData.Integers(2, Dim, seed: 10);
        TopKResult overTcp;
        await using (var tcp = new RemoteTestHost(o =>
        {
            o.WorkerCount = 1;
            o.Transport = RemoteTransport.Tcp;
        }))
        {
            var worker = (await tcp.StartAsync()).Single();
            Assert.StartsWith("http://127.0.0.1:", worker.Address);
            await tcp.Search.CreateCollectionAsync("c", Vectors, Dim);
            overTcp = await tcp.Search.TopKAsync("c", query, 5);
        }

        await using var unix = new RemoteTestHost(o => o.WorkerCount = 1);
        Assert.StartsWith("unix:/", (await unix.StartAsync()).Single().Address);
        await unix.Search.CreateCollectionAsync("c", Vectors, Dim);
        var overUnix = await unix.Search.TopKAsync("c", query, 5);

        Assert.Equal(overUnix.Ids, overTcp.Ids);
    }

    /// <summary>The workers use the transport the test runs over: the fast path unless it is off.</summary>
    private static void AssertTransport(RemoteTestHost host, RemoteFastPath fastPath) =>
        Assert.All(host.Client.Pool.Workers, w => Assert.Equal(fastPath == RemoteFastPath.Auto, w.UsesFastPath));

    private static WorkerInfo Info(RemoteTestHost host, string name) => host.Admin.Workers.Single(w => w.Name == name);

    private static WorkerStatus Status(RemoteTestHost host, string name) => Info(host, name).Status;
}
