using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Dispatch;
using Tandem.Internal.Kernels;

namespace Tandem.Tests.Dispatch;

/// <summary>
/// The dispatcher keeps nothing per distinct call once the call is done: a
/// batch queue leaves when it empties, a dropped state is not held by it, and
/// calls racing with a queue's retirement are never lost.
/// </summary>
public sealed class IdleQueueTests
{
    // A bound on waiting for calls to finish, so a lost call fails the test instead of hanging it.
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);
    private readonly FakeTimeProvider _time = new();
    private readonly TandemOptions _options = new();
    private readonly PricingBackend _backend = new();

    [Fact]
    public async Task DispatchAsync_TenThousandDistinctParameters_LeavesNoQueue()
    {
        _options.Batching.QueueLimit = 20_000;
        var sut = CreateSut(maxRows: 64, delay: TimeSpan.Zero);

        var calls = new Task[10_000];
        for (var i = 0; i < calls.Length; i++)
        {
            // Each seed is its own batch key, as for distinct seeds posted to /pricing/european.
            calls[i] = Run(sut, Call(seed: i, key: i));
        }

        await Task.WhenAll(calls).WaitAsync(Patience);

        Assert.Equal(0, sut.QueueCount);
        Assert.Equal(0, sut.Pending(KernelContracts.MonteCarloEuropean, BackendKind.Managed));
    }

    [Fact]
    public async Task DispatchAsync_StateDroppedAfterItsCallsComplete_IsCollectable()
    {
        var sut = CreateSut(maxRows: 2, delay: TimeSpan.FromSeconds(1));

        var state = await RunBatchOnDroppedStateAsync(sut);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.Equal(0, sut.QueueCount);
        Assert.False(state.IsAlive, "the dispatcher still holds the dropped state");
    }

    [Fact]
    public async Task DispatchAsync_EnqueuesRaceQueueRetirement_EveryCallCompletes()
    {
        _options.Batching.MaxInFlight = 4;
        _backend.YieldOnOddKeys = true;
        var sut = CreateSut(maxRows: 4, delay: TimeSpan.Zero);

        // Two keys, eight callers each making calls one after another: the
        // queues keep draining and retiring while the next call for the same
        // key arrives (in trials, tens of calls per run found a retired queue).
        var callers = new Task<bool>[8];
        for (var c = 0; c < callers.Length; c++)
        {
            var caller = c;
            callers[c] = Task.Run(async () =>
            {
                var ok = true;
                for (var j = 0; j < 2_500; j++)
                {
                    ok &= await RunAndCheck(sut, seed: caller % 2, key: (caller * 2_500) + j);
                }

                return ok;
            });
        }

        var correct = await Task.WhenAll(callers).WaitAsync(Patience);

        Assert.DoesNotContain(false, correct);
        Assert.Equal(0, sut.QueueCount);
        Assert.Equal(0, sut.Pending(KernelContracts.MonteCarloEuropean, BackendKind.Managed));
    }

    private KernelDispatcher CreateSut(int maxRows, TimeSpan delay)
    {
        _options.Batching.MaxBatchRows = maxRows;
        _options.Batching.MaxQueueDelay = delay;
        return new KernelDispatcher(_time, () => _options);
    }

    /// <summary>Runs two calls on one state as a batch; the state is then dropped, and only the weak reference returned.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private async Task<WeakReference> RunBatchOnDroppedStateAsync(KernelDispatcher sut)
    {
        var state = new EmptyState();
        var first = Call(seed: 0, key: 1);
        var second = Call(seed: 0, key: 2);
        first.Call.State = state;
        second.Call.State = state;

        await Task.WhenAll(Run(sut, first), Run(sut, second)).WaitAsync(Patience);

        Assert.Equal([2], _backend.BatchRows);
        return new WeakReference(state);
    }

    private async Task<bool> RunAndCheck(KernelDispatcher sut, long seed, long key)
    {
        var call = Call(seed, key);
        await Run(sut, call);
        return call.Price[0] == Expected(key);
    }

    private async Task Run(KernelDispatcher sut, PricedCall call)
    {
        using (call.Call)
        {
            await sut.DispatchAsync(_backend, call.Call, CancellationToken.None);
        }
    }

    private static double Expected(long key) => (key * 10) + 100;

    private static PricedCall Call(long seed, long key)
    {
        var options = new double[6];
        options[0] = 100;
        var price = new double[1];
        var call = new KernelCall(KernelContracts.European)
            .Input<double>(options, 1, 6).Input<long>(new[] { key }, 1)
            .Output(price.AsMemory(), 1).Output(new double[1].AsMemory(), 1)
            .Param(1000L).Param(seed).Param(0L);
        return new PricedCall(call, price);
    }

    private sealed record PricedCall(KernelCall Call, double[] Price);

    private sealed class EmptyState : IKernelState
    {
        public BackendKind Backend => BackendKind.Managed;

        public long SizeBytes => 0;

        public void Dispose()
        {
        }
    }

    /// <summary>Records each call's rows and writes price = 10·key + options[0].</summary>
    private sealed class PricingBackend : IKernelBackend
    {
        private readonly List<int> _rows = [];

        public BackendKind Kind => BackendKind.Managed;

        public bool YieldOnOddKeys { get; set; }

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

        public ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken) => throw new NotSupportedException();

        public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
        {
            var rows = (int)call.InputDim(0, 0);
            lock (_rows)
            {
                _rows.Add(rows);
            }

            if (YieldOnOddKeys && call.InputSpan<long>(1)[0] % 2 == 1)
            {
                await Task.Yield();
            }

            var options = call.InputSpan<double>(0);
            var keys = call.InputSpan<long>(1);
            var prices = call.OutputSpan<double>(0);
            for (var i = 0; i < rows; i++)
            {
                prices[i] = (keys[i] * 10) + options[i * 6];
            }
        }
    }
}
