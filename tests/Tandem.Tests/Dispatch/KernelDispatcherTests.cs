using Microsoft.Extensions.Time.Testing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Dispatch;
using Tandem.Internal.Kernels;

namespace Tandem.Tests.Dispatch;

/// <summary>
/// Admission, batching, deadlines and cancellation, on fake time and a gated
/// fake backend, so every interleaving is chosen by the test.
/// </summary>
public sealed class KernelDispatcherTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new();
    private readonly TandemOptions _options = new();
    private readonly GatedBackend _backend = new();

    [Fact]
    public async Task DispatchAsync_BatchReachesMaxRows_RunsAtOnceAsOneMergedCall()
    {
        var sut = CreateSut(maxRows: 4, delay: TimeSpan.FromSeconds(1));
        _backend.Open();

        var calls = Enumerable.Range(0, 4).Select(i => Call(sut, firstKey: i, rows: 1)).ToArray();
        await Task.WhenAll(calls.Select(c => c.Task)).WaitAsync(Patience);

        Assert.Equal([4], _backend.BatchRows);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(Expected(i), calls[i].Prices[0]);
        }
    }

    [Fact]
    public async Task DispatchAsync_BelowMaxRows_WaitsForQueueDelayThenRunsTogether()
    {
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromMilliseconds(1));
        _backend.Open();

        var first = Call(sut, firstKey: 0, rows: 2);
        var second = Call(sut, firstKey: 10, rows: 3);
        await Task.Yield();
        Assert.False(first.Task.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await Task.WhenAll(first.Task, second.Task).WaitAsync(Patience);

        Assert.Equal([5], _backend.BatchRows);
        Assert.Equal([Expected(0), Expected(1)], first.Prices);
        Assert.Equal([Expected(10), Expected(11), Expected(12)], second.Prices);
    }

    [Fact]
    public async Task DispatchAsync_PreferredSizeReached_RunsThatSizeWithoutWaiting()
    {
        _options.Batching.PreferredBatchRows = [2];
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromSeconds(1));
        _backend.Open();

        var calls = Enumerable.Range(0, 4).Select(i => Call(sut, firstKey: i, rows: 1)).ToArray();
        await Task.WhenAll(calls.Select(c => c.Task)).WaitAsync(Patience);

        // Time never advanced: each pair of rows ran as soon as it was there.
        Assert.Equal([2, 2], _backend.BatchRows);
        Assert.Equal(Expected(3), calls[3].Prices[0]);
    }

    [Fact]
    public async Task DispatchAsync_DeadlinePassesWhileQueued_DeadlineExceededAndNeverRun()
    {
        _options.CallTimeout = TimeSpan.FromMilliseconds(1);
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromMilliseconds(5));
        _backend.Open();

        var call = Call(sut, firstKey: 0, rows: 1);
        _time.Advance(TimeSpan.FromMilliseconds(5));

        var error = await Assert.ThrowsAsync<TandemException>(() => call.Task.WaitAsync(Patience));
        Assert.Equal(TandemStatusCode.DeadlineExceeded, error.Code);
        Assert.Empty(_backend.BatchRows);
    }

    [Fact]
    public async Task DispatchAsync_DeadlinePassesWhileQueued_MessageNamesTheCallTimeoutOption()
    {
        _options.CallTimeout = TimeSpan.FromMilliseconds(1);
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromMilliseconds(5));
        _backend.Open();

        var call = Call(sut, firstKey: 0, rows: 1);
        _time.Advance(TimeSpan.FromMilliseconds(5));

        var error = await Assert.ThrowsAsync<TandemException>(() => call.Task.WaitAsync(Patience));
        Assert.Contains("Tandem:CallTimeout", error.Message);
    }

    [Fact]
    public async Task DispatchAsync_DefaultOptions_QueuedCallGetsTheDefaultDeadline()
    {
        Assert.Equal(TimeSpan.FromSeconds(30), new TandemOptions().CallTimeout);
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromMinutes(1));

        // No deadline of its own: the default one ends it while it waits for a batch.
        var call = Call(sut, firstKey: 0, rows: 1);
        _time.Advance(TimeSpan.FromMinutes(1));

        var error = await Assert.ThrowsAsync<TandemException>(() => call.Task.WaitAsync(Patience));
        Assert.Equal(TandemStatusCode.DeadlineExceeded, error.Code);
        Assert.Empty(_backend.BatchRows);
    }

    [Fact]
    public async Task DispatchAsync_SummedWorkOverTheBound_SplitsBatchesAtTheBoundAndAllSucceed()
    {
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromSeconds(1));
        _backend.Open();

        // Each call asks for 4 rows × 10^9 paths = 4e9 units; the bound (1e10) holds two per batch.
        var calls = Enumerable.Range(0, 5).Select(i => Call(sut, firstKey: 10 * i, rows: 4, paths: 1_000_000_000)).ToArray();
        await Task.Yield();
        _time.Advance(TimeSpan.FromSeconds(1));
        await Task.WhenAll(calls.Select(c => c.Task)).WaitAsync(Patience);

        Assert.Equal(10_000_000_000, ReferenceKernels.MontecarloEuropean.Limits.MaxWorkPerCall);
        Assert.Equal([4, 8, 8], _backend.BatchRows.Order());
        for (var i = 0; i < calls.Length; i++)
        {
            Assert.Equal([Expected(10 * i), Expected((10 * i) + 1), Expected((10 * i) + 2), Expected((10 * i) + 3)], calls[i].Prices);
        }
    }

    [Fact]
    public async Task DispatchAsync_QueueFull_ResourceExhaustedAtOnce()
    {
        _options.Batching.QueueLimit = 2;
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromSeconds(1));

        var first = Call(sut, firstKey: 0, rows: 1);
        var second = Call(sut, firstKey: 1, rows: 1);
        var third = Call(sut, firstKey: 2, rows: 1);

        var error = await Assert.ThrowsAsync<TandemException>(() => third.Task);
        Assert.Equal(TandemStatusCode.ResourceExhausted, error.Code);
        Assert.True(error.IsRetryable);
        _backend.Open();
        _time.Advance(TimeSpan.FromSeconds(1));
        await Task.WhenAll(first.Task, second.Task).WaitAsync(Patience);
        Assert.Equal(0, sut.Pending(KernelContracts.MonteCarloEuropean, BackendKind.Managed));
    }

    [Fact]
    public async Task DispatchAsync_CancelledWhileQueued_CancelledAndBatchMateUnaffected()
    {
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromMilliseconds(1));
        _backend.Open();
        using var cts = new CancellationTokenSource();

        var cancelled = Call(sut, firstKey: 0, rows: 1, cts.Token);
        var kept = Call(sut, firstKey: 5, rows: 1);
        await cts.CancelAsync();
        var error = await Assert.ThrowsAsync<TandemException>(() => cancelled.Task.WaitAsync(Patience));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await kept.Task.WaitAsync(Patience);

        Assert.Equal(TandemStatusCode.Cancelled, error.Code);
        Assert.Equal([1], _backend.BatchRows);
        Assert.Equal(Expected(5), kept.Prices[0]);
    }

    [Fact]
    public async Task DispatchAsync_CancelledWhileBatchRuns_CompletesAtOnceWithoutCancellingMates()
    {
        var sut = CreateSut(maxRows: 2, delay: TimeSpan.FromSeconds(1));
        using var cts = new CancellationTokenSource();

        var cancelled = Call(sut, firstKey: 0, rows: 1, cts.Token);
        var kept = Call(sut, firstKey: 7, rows: 1);
        await _backend.Started.WaitAsync(Patience);
        await cts.CancelAsync();
        var error = await Assert.ThrowsAsync<TandemException>(() => cancelled.Task.WaitAsync(Patience));
        _backend.Open();
        await kept.Task.WaitAsync(Patience);

        Assert.Equal(TandemStatusCode.Cancelled, error.Code);
        Assert.Equal([2], _backend.BatchRows);
        Assert.Equal(Expected(7), kept.Prices[0]);
        Assert.Equal(0d, cancelled.Prices[0]);
    }

    [Fact]
    public async Task DispatchAsync_BackendBusy_LaterCallsFillTheNextBatchBeyondTheInFlightLimit()
    {
        _options.Batching.MaxInFlight = 1;
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.Zero);

        var first = Call(sut, firstKey: 0, rows: 1);
        await _backend.Started.WaitAsync(Patience);
        var waiting = Enumerable.Range(1, 10).Select(i => Call(sut, firstKey: 10 * i, rows: 1)).ToArray();
        _backend.Open();
        await Task.WhenAll(waiting.Select(c => c.Task).Append(first.Task)).WaitAsync(Patience);

        // One batch of one while busy, then one batch of all ten that queued meanwhile.
        Assert.Equal([1, 10], _backend.BatchRows);
        Assert.Equal(Expected(50), waiting[4].Prices[0]);
    }

    [Fact]
    public async Task DispatchAsync_BatchFails_EveryMemberGetsTheError()
    {
        var sut = CreateSut(maxRows: 2, delay: TimeSpan.FromSeconds(1));
        _backend.FailWith = new TandemException(TandemStatusCode.Internal, "boom", KernelContracts.MonteCarloEuropean);
        _backend.Open();

        var a = Call(sut, firstKey: 0, rows: 1);
        var b = Call(sut, firstKey: 1, rows: 1);

        Assert.Equal("boom", (await Assert.ThrowsAsync<TandemException>(() => a.Task.WaitAsync(Patience))).Message);
        Assert.Equal("boom", (await Assert.ThrowsAsync<TandemException>(() => b.Task.WaitAsync(Patience))).Message);
    }

    [Fact]
    public async Task DispatchAsync_BatchingDisabled_EachCallRunsAlone()
    {
        _options.Batching.Enabled = false;
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.FromSeconds(1));
        _backend.Open();

        var calls = Enumerable.Range(0, 3).Select(i => Call(sut, firstKey: i, rows: 2)).ToArray();
        await Task.WhenAll(calls.Select(c => c.Task)).WaitAsync(Patience);

        Assert.Equal([2, 2, 2], _backend.BatchRows);
    }

    private static double Expected(long key) => (key * 10) + 100;

    private KernelDispatcher CreateSut(int maxRows, TimeSpan delay)
    {
        _options.Batching.MaxBatchRows = maxRows;
        _options.Batching.MaxQueueDelay = delay;
        return new KernelDispatcher(_time, () => _options);
    }

    private PendingResult Call(KernelDispatcher sut, long firstKey, int rows, CancellationToken cancellationToken = default) =>
        Call(sut, firstKey, rows, paths: 1000, cancellationToken);

    private PendingResult Call(KernelDispatcher sut, long firstKey, int rows, long paths, CancellationToken cancellationToken = default)
    {
        var options = new double[rows * 6];
        var keys = new long[rows];
        for (var i = 0; i < rows; i++)
        {
            options[i * 6] = 100;
            keys[i] = firstKey + i;
        }

        var prices = new double[rows];
        var call = new KernelCall(KernelContracts.European);
        call.Input<double>(options, rows, 6).Input<long>(keys, rows).Output(prices.AsMemory(), rows).Output(new double[rows].AsMemory(), rows).Param(paths).Param(0L).Param(0L);
        // What KernelBackends does before dispatching: the units batches are split by.
        call.WorkUnits = CallWork.Check(call);
        return new PendingResult(Run(sut, call, cancellationToken), prices);
    }

    private async Task Run(KernelDispatcher sut, KernelCall call, CancellationToken cancellationToken)
    {
        using (call)
        {
            await sut.DispatchAsync(_backend, call, cancellationToken);
        }
    }

    private sealed record PendingResult(Task Task, double[] Prices);

    /// <summary>Records each call's rows; writes price = 10·key + options[0]; runs only once opened.</summary>
    private sealed class GatedBackend : IKernelBackend
    {
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<int> _rows = [];

        public BackendKind Kind => BackendKind.Managed;

        public Exception? FailWith { get; set; }

        public Task Started => _started.Task;

        public int[] BatchRows
        {
            get
            {
                lock (_rows)
                {
                    return [.. _rows];
                }
            }
        }

        public void Open() => _open.TrySetResult();

        public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
        {
            var rows = (int)call.InputDim(0, 0);
            lock (_rows)
            {
                _rows.Add(rows);
            }

            _started.TrySetResult();
            await _open.Task;
            if (FailWith is { } failure)
            {
                throw failure;
            }

            var options = call.InputSpan<double>(0);
            var keys = call.InputSpan<long>(1);
            var prices = call.OutputSpan<double>(0);
            for (var i = 0; i < rows; i++)
            {
                prices[i] = (keys[i] * 10) + options[i * 6];
            }
        }

        public ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
