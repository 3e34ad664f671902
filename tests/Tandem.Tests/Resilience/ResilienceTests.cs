using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Tests.Native;

namespace Tandem.Tests.Resilience;

/// <summary>Retries, circuit breaking and fallback around backend calls, on fake time with fault injection.</summary>
public sealed class ResilienceTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly TandemOptions _options = new();
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public ResilienceTests()
    {
        _options.Resilience.RetryBaseDelay = TimeSpan.Zero;
    }

    public void Dispose() => _metrics.Dispose();

    [Fact]
    public async Task ExecuteAsync_RetryableFailureOnIdempotentKernel_RetriedUntilSuccess()
    {
        var backend = new FaultyBackend(TandemStatusCode.Unavailable, TandemStatusCode.Unavailable);
        using var call = PricingCall(KernelContracts.European);

        await CreateSut().ExecuteAsync(backend, call, CancellationToken.None);

        Assert.Equal(3, backend.Attempts);
    }

    [Theory]
    [InlineData(TandemStatusCode.InvalidArgument)]
    [InlineData(TandemStatusCode.NotFound)]
    [InlineData(TandemStatusCode.FailedPrecondition)]
    public async Task ExecuteAsync_NonRetryableCode_NotRetried(TandemStatusCode code)
    {
        var backend = new FaultyBackend(code);
        using var call = PricingCall(KernelContracts.European);

        var error = await Assert.ThrowsAsync<TandemException>(() => CreateSut().ExecuteAsync(backend, call, CancellationToken.None).AsTask());

        Assert.Equal(code, error.Code);
        Assert.Equal(1, backend.Attempts);
    }

    [Fact]
    public async Task ExecuteAsync_NonIdempotentKernel_NotRetried()
    {
        var notIdempotent = KernelContracts.European.Clone();
        notIdempotent.Flags.Idempotent = false;
        var backend = new FaultyBackend(TandemStatusCode.Unavailable);
        using var call = PricingCall(notIdempotent);

        await Assert.ThrowsAsync<TandemException>(() => CreateSut().ExecuteAsync(backend, call, CancellationToken.None).AsTask());

        Assert.Equal(1, backend.Attempts);
    }

    [Fact]
    public async Task ExecuteAsync_RepeatedInternalErrors_BreakerOpensThenHalfOpensAndCloses()
    {
        _options.FallbackToManaged = false;
        _options.Resilience.BreakerMinimumThroughput = 4;
        _options.Resilience.BreakerFailureRatio = 0.5;
        var sut = CreateSut();
        var backend = new FaultyBackend(Enumerable.Repeat(TandemStatusCode.Internal, 4).ToArray());

        for (var i = 0; i < 4; i++)
        {
            using var failing = PricingCall(KernelContracts.European);
            Assert.Equal(TandemStatusCode.Internal, (await Assert.ThrowsAsync<TandemException>(() => sut.ExecuteAsync(backend, failing, CancellationToken.None).AsTask())).Code);
        }

        using var rejected = PricingCall(KernelContracts.European);
        var open = await Assert.ThrowsAsync<TandemException>(() => sut.ExecuteAsync(backend, rejected, CancellationToken.None).AsTask());
        Assert.Equal(TandemStatusCode.Unavailable, open.Code);
        Assert.Contains("circuit is open", open.Message);
        Assert.Equal(4, backend.Attempts);

        _time.Advance(_options.Resilience.BreakerBreakDuration);
        using var probe = PricingCall(KernelContracts.European);
        await sut.ExecuteAsync(backend, probe, CancellationToken.None);
        using var after = PricingCall(KernelContracts.European);
        await sut.ExecuteAsync(backend, after, CancellationToken.None);
        Assert.Equal(6, backend.Attempts);
    }

    [Fact]
    public async Task Invoke_SynchronousFailures_NotRetriedButOpenTheSameCircuit()
    {
        _options.FallbackToManaged = false;
        _options.Resilience.BreakerMinimumThroughput = 4;
        var sut = CreateSut();
        var backend = new FaultyBackend(Enumerable.Repeat(TandemStatusCode.Unavailable, 4).ToArray());

        for (var i = 0; i < 4; i++)
        {
            using var failing = PricingCall(KernelContracts.European);
            Assert.Throws<TandemException>(() => sut.Invoke(backend, failing));
        }

        Assert.Equal(4, backend.Attempts);
        using var rejected = PricingCall(KernelContracts.European);
        var open = await Assert.ThrowsAsync<TandemException>(() => sut.ExecuteAsync(backend, rejected, CancellationToken.None).AsTask());
        Assert.Contains("circuit is open", open.Message);
        Assert.Equal(4, backend.Attempts);
    }

    [Fact]
    public async Task ExecuteAsync_NativeFailsOnStatelessKernel_FallsBackToManagedAndCountsReason()
    {
        using var fallbacks = new MetricCollector<long>(_metrics.GetRequiredService<IMeterFactory>(), "Tandem", "tandem.fallbacks");
        var backend = new FaultyBackend(TandemStatusCode.Internal) { Kind = BackendKind.Native };
        var prices = new double[1];
        using var call = PricingCall(KernelContracts.European, prices);

        await CreateSut().ExecuteAsync(backend, call, CancellationToken.None);

        Assert.True(prices[0] > 0, "the managed kernel priced the option");
        var measurement = Assert.Single(fallbacks.GetMeasurementSnapshot());
        Assert.Equal("INTERNAL", measurement.Tags["reason"]);
        Assert.Equal("native", measurement.Tags["from"]);
        Assert.Equal("managed", measurement.Tags["to"]);
        Assert.Equal("montecarlo.european", measurement.Tags["kernel"]);
    }

    [Theory]
    [InlineData(TandemStatusCode.Unavailable, "UNAVAILABLE")]
    [InlineData(TandemStatusCode.DeadlineExceeded, "DEADLINE_EXCEEDED")]
    [InlineData(TandemStatusCode.Internal, "INTERNAL")]
    public async Task ExecuteAsync_RemoteFails_FallsBackToNativeAndCountsReason(TandemStatusCode code, string reason)
    {
        using var fallbacks = new MetricCollector<long>(_metrics.GetRequiredService<IMeterFactory>(), "Tandem", "tandem.fallbacks");
        var backend = new FaultyBackend(Enumerable.Repeat(code, 3).ToArray()) { Kind = BackendKind.Remote };
        var prices = new double[1];
        using var call = PricingCall(KernelContracts.European, prices);

        await CreateSut().ExecuteAsync(backend, call, CancellationToken.None);

        Assert.True(prices[0] > 0, "the native kernel priced the option");
        var measurement = Assert.Single(fallbacks.GetMeasurementSnapshot());
        Assert.Equal(reason, measurement.Tags["reason"]);
        Assert.Equal("remote", measurement.Tags["from"]);
        Assert.Equal("native", measurement.Tags["to"]);
    }

    [Fact]
    public async Task ExecuteAsync_RemoteFailsWithInvalidArgument_NoFallback()
    {
        var backend = new FaultyBackend(TandemStatusCode.InvalidArgument) { Kind = BackendKind.Remote };
        using var call = PricingCall(KernelContracts.European);

        var error = await Assert.ThrowsAsync<TandemException>(() => CreateSut().ExecuteAsync(backend, call, CancellationToken.None).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
    }

    [Fact]
    public void For_RemoteConfiguredButNotRegistered_FallsBackOrRefuses()
    {
        _options.Backend = BackendKind.Remote;
        Assert.Equal(BackendKind.Native, CreateSut().For(KernelContracts.MonteCarloEuropean).Kind);

        _options.FallbackToManaged = false;
        var error = Assert.Throws<TandemException>(() => CreateSut().For(KernelContracts.MonteCarloEuropean));
        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
    }

    [Fact]
    public void For_RemoteConfiguredAndRegistered_ReturnsRemote()
    {
        _options.Backend = BackendKind.Remote;
        var remote = new FaultyBackend { Kind = BackendKind.Remote };
        var sut = new KernelBackends(new Monitor(_options), NullLoggerFactory.Instance, NativeLibraryFixture.EnsureLoaded(), _time, remote: remote);

        Assert.Same(remote, sut.For(KernelContracts.MonteCarloEuropean));
    }

    [Fact]
    public void InProcessFor_KernelRoutedToRemote_NativeSoNoThreadWaitsOnAWorker()
    {
        _options.Backend = BackendKind.Remote;
        _options.FallbackToManaged = false;
        var remote = new RefusingBackend();
        var sut = new KernelBackends(new Monitor(_options), NullLoggerFactory.Instance, NativeLibraryFixture.EnsureLoaded(), _time, remote: remote);

        Assert.Same(remote, sut.For(KernelContracts.HashBlake3));
        Assert.Equal(BackendKind.Native, sut.InProcessFor(KernelContracts.HashBlake3).Kind);
    }

    [Fact]
    public void For_RemoteRefusesKernel_FallsBackToNativeOrSurfacesTheRefusal()
    {
        _options.Backend = BackendKind.Remote;
        var remote = new RefusingBackend();
        var sut = new KernelBackends(new Monitor(_options), NullLoggerFactory.Instance, NativeLibraryFixture.EnsureLoaded(), _time, remote: remote);

        Assert.Equal(BackendKind.Native, sut.For(KernelContracts.MonteCarloEuropean).Kind);
        Assert.Same(remote, sut.For(KernelContracts.SimilarityTopK));

        _options.FallbackToManaged = false;
        var error = Assert.Throws<TandemException>(() => sut.For(KernelContracts.MonteCarloEuropean));
        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
    }

    [Fact]
    public async Task ExecuteAsync_FallbackDisabled_ErrorSurfaces()
    {
        _options.FallbackToManaged = false;
        var backend = new FaultyBackend(TandemStatusCode.Internal) { Kind = BackendKind.Native };
        using var call = PricingCall(KernelContracts.European);

        var error = await Assert.ThrowsAsync<TandemException>(() => CreateSut().ExecuteAsync(backend, call, CancellationToken.None).AsTask());

        Assert.Equal(TandemStatusCode.Internal, error.Code);
    }

    [Fact]
    public async Task InvokeAsync_Completes_EmitsCallsAndBatchMetricsWithTags()
    {
        using var calls = new MetricCollector<long>(_metrics.GetRequiredService<IMeterFactory>(), "Tandem", "tandem.calls");
        using var batches = new MetricCollector<long>(_metrics.GetRequiredService<IMeterFactory>(), "Tandem", "tandem.batch.size");
        _options.Backend = BackendKind.Managed;
        _options.Batching.MaxQueueDelay = TimeSpan.Zero;
        var sut = CreateSut();
        using var call = PricingCall(KernelContracts.European);

        await sut.InvokeAsync(sut.Managed, call, CancellationToken.None);

        var completed = Assert.Single(calls.GetMeasurementSnapshot());
        Assert.Equal("OK", completed.Tags["code"]);
        Assert.Equal("managed", completed.Tags["backend"]);
        Assert.Equal(1, Assert.Single(batches.GetMeasurementSnapshot()).Value);
        Assert.Equal(0, sut.Pending(KernelContracts.MonteCarloEuropean, BackendKind.Managed));
    }

    private KernelBackends CreateSut() => new(new Monitor(_options), NullLoggerFactory.Instance, NativeLibraryFixture.EnsureLoaded(), _time, _metrics.GetRequiredService<IMeterFactory>());

    private static KernelCall PricingCall(KernelDescriptor descriptor, double[]? prices = null)
    {
        prices ??= new double[1];
        return new KernelCall(descriptor)
            .Input<double>(new double[] { 100, 100, 0.01, 0.2, 1, 1 }, 1, 6)
            .Input<long>(new long[] { 0 }, 1)
            .Output(prices.AsMemory(), 1)
            .Output(new double[1].AsMemory(), 1)
            .Param(1000L).Param(0L).Param(0L);
    }

    private sealed class Monitor(TandemOptions value) : IOptionsMonitor<TandemOptions>
    {
        public TandemOptions CurrentValue => value;

        public TandemOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<TandemOptions, string?> listener) => null;
    }

    /// <summary>A remote backend whose workers declare a different montecarlo.european.</summary>
    private sealed class RefusingBackend : IKernelBackend, IKernelRefusals
    {
        public BackendKind Kind => BackendKind.Remote;

        public TandemException? Refusal(string kernel) => kernel == KernelContracts.MonteCarloEuropean
            ? new TandemException(TandemStatusCode.FailedPrecondition, "version 2 on the workers", kernel, BackendKind.Remote)
            : null;

        public ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    /// <summary>Fails with the given codes in turn, then succeeds; synchronous calls too, as an in-process backend.</summary>
    private sealed class FaultyBackend(params TandemStatusCode[] failures) : IInProcessKernelBackend
    {
        private int _attempts;

        public BackendKind Kind { get; init; } = BackendKind.Managed;

        public int Attempts => _attempts;

        public void Invoke(KernelCall call)
        {
            var attempt = Interlocked.Increment(ref _attempts) - 1;
            if (attempt < failures.Length)
            {
                throw new TandemException(failures[attempt], $"injected {failures[attempt]}", call.Kernel, Kind);
            }
        }

        public ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
        {
            var attempt = Interlocked.Increment(ref _attempts) - 1;
            return attempt < failures.Length
                ? ValueTask.FromException(new TandemException(failures[attempt], $"injected {failures[attempt]}", call.Kernel, Kind))
                : ValueTask.CompletedTask;
        }

        public IKernelState CreateState(string kind, KernelCall tensors) => throw new NotSupportedException();

        public ISynchronousKernelStream OpenStream(string kernel) => throw new NotSupportedException();
    }
}
