using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Pricing;
using Tandem.Tests.Remote;

namespace Tandem.Tests.Kernels;

/// <summary>
/// The work bound a descriptor declares (montecarlo.european: rows × paths),
/// refused with the same code and message by the dispatcher on every backend
/// and, for a call that skips the dispatcher, by the Rust SDK in process and
/// in a worker.
/// </summary>
[Collection(RemoteWorkersCollection.Name)]
public sealed class WorkBoundTests
{
    /// <summary>100 options × 10^9 paths = 10^11 paths: minutes of every core.</summary>
    private const string Refusal = "kernel 'montecarlo.european' asks for 100000000000 units of work (batch 100 × paths 1000000000); at most 10000000000 per call (limit max_work_per_call); split the call";

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Remote)]
    public async Task PriceEuropeanAsync_HundredOptionsAtMostPaths_ResourceExhaustedNamingTheLimitAndCounted(BackendKind backend)
    {
        await using var services = CreateSut(backend);
        using var rejections = new MetricCollector<long>(services.GetRequiredService<IMeterFactory>(), TandemTelemetryNames.Source, TandemTelemetryNames.Rejections);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(Options(100), new MonteCarloSettings { Paths = 1_000_000_000 }).AsTask());

        Assert.Equal(TandemStatusCode.ResourceExhausted, error.Code);
        Assert.Equal(Refusal, error.Message);
        var rejection = Assert.Single(rejections.GetMeasurementSnapshot());
        Assert.Equal("montecarlo.european", rejection.Tags["kernel"]);
        Assert.Equal("max_work_per_call", rejection.Tags["reason"]);
    }

    [Theory]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Remote)]
    public async Task BackendInvokeAsync_CallSkippingTheDispatcher_RustRefusesOnceWithTheSameCodeAndMessage(BackendKind backend)
    {
        // Two more workers to try: a per-call limit is met on every worker, so the pool must not try them.
        await using var services = CreateSut(backend, retriesOnOtherWorkers: 2);
        var backends = services.GetRequiredService<KernelBackends>();
        using var call = EuropeanCall(rows: 100, paths: 1_000_000_000);

        // Straight to the backend: no C# validation, so the SDK's own check is what refuses.
        var error = await Assert.ThrowsAsync<TandemException>(() => backends.For(KernelContracts.MonteCarloEuropean).InvokeAsync(call, CancellationToken.None).AsTask());

        Assert.True(error.Code == TandemStatusCode.ResourceExhausted, $"{error.Code}: {error.Message}");
        Assert.EndsWith(Refusal, error.Message);
        Assert.Equal(TandemStatusCodes.WorkLimit, error.Limit);
        Assert.False(error.IsRetryable);
    }

    [Fact]
    public async Task PriceEuropeanAsync_OverTheBound_NotRetryableAndNoFallback()
    {
        await using var services = new ServiceCollection().AddTandem(o => { o.Backend = BackendKind.Native; o.FallbackToManaged = true; }).BuildServiceProvider();

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(Options(100), new MonteCarloSettings { Paths = 1_000_000_000 }).AsTask());

        Assert.Equal(TandemStatusCodes.WorkLimit, error.Limit);
        Assert.False(error.IsRetryable);
        Assert.Null(error.Backend);
    }

    [Fact]
    public void Check_SixtyFourOptionsAtAMillionPaths_WithinTheBound()
    {
        // Checked on the bound rather than run: 6.4e7 paths are seconds of Managed compute.
        using var call = EuropeanCall(rows: 64, paths: 1_000_000);
        ContractValidator.Validate(call);

        Assert.Equal(64_000_000UL, CallWork.Check(call));
    }

    [Fact]
    public async Task GeneratedFacade_HundredOptionsAtMostPaths_SameRefusal()
    {
        await using var services = new ServiceCollection().AddTandem(o => { o.Backend = BackendKind.Native; o.FallbackToManaged = false; }).AddReferenceKernels().BuildServiceProvider();
        var (rows, keys) = Rows(100);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<MontecarloEuropeanKernel>().InvokeAsync(rows, keys, paths: 1_000_000_000).AsTask());

        Assert.Equal(TandemStatusCode.ResourceExhausted, error.Code);
        Assert.Equal(Refusal, error.Message);
    }

    [Fact]
    public void Check_FactorsWhoseProductOverflows_SaturatesInsteadOfWrapping()
    {
        Assert.Equal(ulong.MaxValue, CallWork.SaturatingMultiply(1UL << 32, 1UL << 32));
        Assert.Equal(ulong.MaxValue, CallWork.SaturatingMultiply(3, 1UL << 63));
        Assert.Equal(6UL, CallWork.SaturatingMultiply(2, 3));
    }

    private static ServiceProvider CreateSut(BackendKind backend, int retriesOnOtherWorkers = 2)
    {
        var services = new ServiceCollection().AddMetrics().AddTandem(o =>
        {
            o.Backend = backend;
            o.FallbackToManaged = false;
        });
        if (backend == BackendKind.Remote)
        {
            RemoteWorkersFixture.Current!.AddRemote(services);
            services.Configure<Tandem.Remote.RemoteOptions>(o => o.RetriesOnOtherWorkers = retriesOnOtherWorkers);
        }

        return services.BuildServiceProvider();
    }

    private static EuropeanOption[] Options(int count) =>
        Enumerable.Repeat(new EuropeanOption(100, 100, 0.01, 0.2, 1, OptionKind.Call), count).ToArray();

    /// <summary><paramref name="count"/> at-the-money calls as option rows, keyed by index.</summary>
    private static (double[] Rows, long[] Keys) Rows(int count)
    {
        double[] row = [100, 100, 0.01, 0.2, 1, 1];
        var rows = new double[count * 6];
        var keys = new long[count];
        for (var i = 0; i < count; i++)
        {
            row.CopyTo(rows, i * 6);
            keys[i] = i;
        }

        return (rows, keys);
    }

    private static KernelCall EuropeanCall(int rows, long paths)
    {
        var (options, keys) = Rows(rows);
        var call = new KernelCall(KernelContracts.European);
        call.Input<double>(options, rows, 6).Input<long>(keys, rows).Output(new double[rows].AsMemory(), rows).Output(new double[rows].AsMemory(), rows).Param(paths).Param(0L).Param(0L);
        return call;
    }
}
