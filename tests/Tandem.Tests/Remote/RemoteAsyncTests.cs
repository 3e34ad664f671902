using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Remote.Internal.Supervision;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// The Remote backend never holds a thread while it waits — for the workers
/// to start, for a state to replicate, for a worker to read a stream — and
/// the caller's cancellation ends each wait. Workers that cannot answer
/// (not started yet, or stopped with SIGSTOP) make every wait certain.
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
public sealed class RemoteAsyncTests
{
    private const int Dim = 8;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task CreateStateAsync_WorkersStillStarting_ReturnsAtOnceAndCancelsKeepingNothing()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-async-");
        try
        {
            await using var host = NeverStarting(sockets);
            using var cts = new CancellationTokenSource();
            using var tensors = CollectionTensors();

            var creating = host.Client.Backend.CreateStateAsync(KernelContracts.CollectionKind, tensors, cts.Token);
            // A synchronous CreateState held this thread until the workers started.
            Assert.False(creating.IsCompleted);
            await cts.CancelAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => creating.AsTask().WaitAsync(Patience));

            Assert.Equal(TandemStatusCode.Cancelled, error.Code);
            Assert.Equal(BackendKind.Remote, error.Backend);
            Assert.Contains("while the remote workers were starting", error.Message);
            Assert.Equal(0, host.Client.Pool.StateCount);
        }
        finally
        {
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task CreateCollectionAsync_WorkersStillStarting_CancelledAndNoCollection()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-async-");
        try
        {
            await using var host = NeverStarting(sockets);
            using var cts = new CancellationTokenSource();

            var creating = host.Search.CreateCollectionAsync("c", TestData.Integers(50, Dim, seed: 1), Dim, cancellationToken: cts.Token);
            await cts.CancelAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => creating.AsTask().WaitAsync(Patience));

            Assert.Equal(TandemStatusCode.Cancelled, error.Code);
            Assert.Empty(host.Search.Collections);
            Assert.Equal(0, host.Client.Pool.StateCount);
        }
        finally
        {
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task OpenStreamAsync_WorkersStillStarting_ReturnsAtOnceAndHonoursCancellation()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-async-");
        try
        {
            await using var host = NeverStarting(sockets);
            using var cts = new CancellationTokenSource();

            var opening = host.Hashing.OpenStreamAsync(cts.Token);
            Assert.False(opening.IsCompleted);
            await cts.CancelAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => opening.AsTask().WaitAsync(Patience));

            Assert.Equal(TandemStatusCode.Cancelled, error.Code);
        }
        finally
        {
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task CreateStateAsync_AWorkerStoppedDuringReplication_CancelsAndForgetsTheState()
    {
        await using var host = new RemoteTestHost();
        var stopped = (await host.StartAsync())[0];
        using var cts = new CancellationTokenSource();
        using var tensors = CollectionTensors();
        RemoteTestHost.Signal(stopped.ProcessId!.Value, Signals.Stop);
        try
        {
            var creating = host.Client.Backend.CreateStateAsync(KernelContracts.CollectionKind, tensors, cts.Token);
            // The stopped worker cannot answer its CreateState.
            Assert.False(creating.IsCompleted);
            await cts.CancelAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => creating.AsTask().WaitAsync(Patience));

            Assert.Equal(TandemStatusCode.Cancelled, error.Code);
            Assert.Contains("while the state was replicated", error.Message);
            Assert.Equal(0, host.Client.Pool.StateCount);
            Assert.All(host.Client.Pool.Workers, w => Assert.Empty(w.States));
        }
        finally
        {
            RemoteTestHost.Signal(stopped.ProcessId.Value, Signals.Cont);
        }
    }

    [Fact]
    public async Task AppendAsync_WorkerStoppedMidStream_CancelledAndTheStreamTakesNoMore()
    {
        await using var host = new RemoteTestHost(o => o.WorkerCount = 1);
        var worker = (await host.StartAsync()).Single();
        await using var stream = await host.Hashing.OpenStreamAsync();
        Assert.Equal(BackendKind.Remote, stream.Backend);
        using var cts = new CancellationTokenSource();
        RemoteTestHost.Signal(worker.ProcessId!.Value, Signals.Stop);
        try
        {
            // Far more than HTTP/2 windows and socket buffers hold, and the stopped worker reads none of it.
            var appending = stream.AppendAsync(new byte[64 << 20], cts.Token);
            Assert.False(appending.IsCompleted);
            await cts.CancelAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => appending.AsTask().WaitAsync(Patience));
            var after = await Assert.ThrowsAsync<TandemException>(() => stream.AppendAsync(new byte[1]).AsTask());

            Assert.Equal(TandemStatusCode.Cancelled, error.Code);
            Assert.Contains("while the stream was sent", error.Message);
            Assert.Equal(TandemStatusCode.Cancelled, after.Code);
            Assert.Contains("open a new one", after.Message);
        }
        finally
        {
            RemoteTestHost.Signal(worker.ProcessId.Value, Signals.Cont);
        }
    }

    [Fact]
    public async Task AppendAsync_WorkerKilledMidMessage_UnavailableNeverARawIOException()
    {
        // Found by the fault soak: an aborted HTTP/2 request surfaced as IOException.
        await using var host = new RemoteTestHost(o => o.WorkerCount = 1);
        var worker = (await host.StartAsync()).Single();
        await using var stream = await host.Hashing.OpenStreamAsync();
        RemoteTestHost.Signal(worker.ProcessId!.Value, Signals.Stop);
        // Far more than HTTP/2 windows and socket buffers hold: the write is mid-message when the worker dies.
        var appending = stream.AppendAsync(new byte[64 << 20]);
        Assert.False(appending.IsCompleted);
        RemoteTestHost.Signal(worker.ProcessId.Value, Signals.Kill);

        var error = await Assert.ThrowsAsync<TandemException>(() => appending.AsTask().WaitAsync(Patience));

        Assert.Equal(TandemStatusCode.Unavailable, error.Code);
        Assert.True(error.IsRetryable);
    }

    [Fact]
    public async Task FinalizeAsync_WorkerStoppedBeforeItAnswers_Cancelled()
    {
        await using var host = new RemoteTestHost(o => o.WorkerCount = 1);
        var worker = (await host.StartAsync()).Single();
        await using var stream = await host.Hashing.OpenStreamAsync();
        // Past what the stream holds back, so the call is open and the data sent.
        await stream.AppendAsync(new byte[2 << 20]);
        using var cts = new CancellationTokenSource();
        RemoteTestHost.Signal(worker.ProcessId!.Value, Signals.Stop);
        try
        {
            var finalizing = stream.FinalizeAsync(cancellationToken: cts.Token);
            // The stopped worker cannot send the digest.
            Assert.False(finalizing.IsCompleted);
            await cts.CancelAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => finalizing.AsTask().WaitAsync(Patience));

            Assert.Equal(TandemStatusCode.Cancelled, error.Code);
            Assert.Contains("waited for the worker's digest", error.Message);
        }
        finally
        {
            RemoteTestHost.Signal(worker.ProcessId.Value, Signals.Cont);
        }
    }

    /// <summary>A client whose only endpoint never serves, with a start that waits for it far longer than any test runs.</summary>
    private static RemoteTestHost NeverStarting(DirectoryInfo sockets) => new(o =>
    {
        o.Endpoints.Add("unix:" + Path.Combine(sockets.FullName, "never.sock"));
        o.StartTimeout = TimeSpan.FromMinutes(10);
    });

    private static KernelCall CollectionTensors() =>
        new KernelCall(KernelContracts.TopK).Input<float>(TestData.Integers(50, Dim, seed: 2), 50, Dim).Absent();
}
