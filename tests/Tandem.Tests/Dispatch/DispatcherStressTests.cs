using Tandem.Internal.Contracts;
using Tandem.Internal.Dispatch;
using Tandem.Internal.Kernels;

namespace Tandem.Tests.Dispatch;

/// <summary>
/// 10,000 concurrent calls across a batchable and a non-batchable kernel,
/// through a backend that randomly fails, rejects and yields, some callers
/// cancelling: every call completes exactly once with the right result or
/// the right error, and nothing is left behind.
/// </summary>
[Collection(NonParallel.Name)]
public sealed class DispatcherStressTests
{
    [Fact]
    public async Task DispatchAsync_TenThousandCallsThroughChaos_EachCompletesOnceAndNothingLeaks()
    {
        var options = new TandemOptions();
        options.Batching.MaxBatchRows = 32;
        options.Batching.MaxQueueDelay = TimeSpan.FromMicroseconds(100);
        options.Batching.QueueLimit = 20_000;
        options.Batching.MaxInFlight = 3;
        var backend = new ChaosBackend(seed: 42);
        var sut = new KernelDispatcher(TimeProvider.System, () => options);
        var random = new Random(7);
        var outcomes = new Task<Outcome>[10_000];
        var cancellations = new List<CancellationTokenSource>();
        for (var i = 0; i < outcomes.Length; i++)
        {
            var batchable = i % 4 != 0;
            CancellationTokenSource? cts = null;
            if (random.Next(10) == 0)
            {
                cts = new CancellationTokenSource();
                cancellations.Add(cts);
            }

            outcomes[i] = Task.Run(() => RunOne(sut, backend, key: i, rows: 1 + (i % 3), batchable, cts?.Token ?? default));
        }

        foreach (var cts in cancellations)
        {
            await cts.CancelAsync();
        }

        var results = await Task.WhenAll(outcomes).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.All(results, r => Assert.True(r.Correct, r.Detail));
        Assert.Contains(results, r => r.Code == TandemStatusCode.Ok);
        Assert.Contains(results, r => r.Code == TandemStatusCode.Internal);
        Assert.Contains(results, r => r.Code == TandemStatusCode.ResourceExhausted);
        Assert.Equal(0, sut.Pending(KernelContracts.MonteCarloEuropean, BackendKind.Managed));
        Assert.Equal(0, sut.Pending(KernelContracts.HashBlake3, BackendKind.Managed));
        Assert.Equal(0, RowMerge.Live);
        foreach (var cts in cancellations)
        {
            cts.Dispose();
        }
    }

    private static async Task<Outcome> RunOne(KernelDispatcher sut, ChaosBackend backend, int key, int rows, bool batchable, CancellationToken cancellationToken)
    {
        var descriptor = batchable ? KernelContracts.European : KernelContracts.Blake3;
        var input = new double[rows * 6];
        var keys = new long[rows];
        for (var r = 0; r < rows; r++)
        {
            input[r * 6] = r;
            keys[r] = key;
        }

        var prices = new double[rows];
        using var call = batchable
            ? new KernelCall(descriptor).Input<double>(input, rows, 6).Input<long>(keys, rows).Output(prices.AsMemory(), rows).Output(new double[rows].AsMemory(), rows).Param(10L).Param(0L).Param(0L)
            : new KernelCall(descriptor).Input<double>(input, rows, 6).Input<long>(keys, rows).Output(prices.AsMemory(), rows);
        try
        {
            await sut.DispatchAsync(backend, call, cancellationToken);
        }
        catch (TandemException e)
        {
            var expected = e.Code is TandemStatusCode.Internal or TandemStatusCode.ResourceExhausted
                || (e.Code == TandemStatusCode.Cancelled && cancellationToken.IsCancellationRequested);
            return new Outcome(e.Code, expected, $"call {key}: unexpected {e.Code}: {e.Message}");
        }

        for (var r = 0; r < rows; r++)
        {
            if (prices[r] != (key * 10.0) + r)
            {
                return new Outcome(TandemStatusCode.Ok, false, $"call {key} row {r}: {prices[r]}");
            }
        }

        return new Outcome(TandemStatusCode.Ok, true, string.Empty);
    }

    private sealed record Outcome(TandemStatusCode Code, bool Correct, string Detail);

    /// <summary>Per call or batch: 10% INTERNAL, 10% RESOURCE_EXHAUSTED, otherwise yields a few times and writes 10·key + row.</summary>
    private sealed class ChaosBackend(int seed) : IKernelBackend
    {
        private readonly Random _random = new(seed);

        public BackendKind Kind => BackendKind.Managed;

        public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
        {
            int roll, yields;
            lock (_random)
            {
                roll = _random.Next(10);
                yields = _random.Next(4);
            }

            for (var i = 0; i < yields; i++)
            {
                await Task.Yield();
            }

            if (roll == 0)
            {
                throw new TandemException(TandemStatusCode.Internal, "injected failure", call.Kernel, Kind);
            }

            if (roll == 1)
            {
                throw new TandemException(TandemStatusCode.ResourceExhausted, "injected rejection", call.Kernel, Kind);
            }

            var rows = (int)call.InputDim(0, 0);
            var input = call.InputSpan<double>(0);
            var keys = call.InputSpan<long>(1);
            var prices = call.OutputSpan<double>(0);
            for (var r = 0; r < rows; r++)
            {
                prices[r] = (keys[r] * 10.0) + input[r * 6];
            }
        }

        public ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}

/// <summary>Tests that read process-wide counters run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NonParallel
{
    public const string Name = "non-parallel";
}
