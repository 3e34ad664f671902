using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Pricing;
using Tandem.Similarity;
using Tandem.Tests.Native;

namespace Tandem.Tests.Caching;

public sealed class ResultCacheTests
{
    private readonly TandemOptions _options = new() { Backend = BackendKind.Managed };

    [Fact]
    public async Task InvokeAsync_CacheOffByDefault_EveryCallRuns()
    {
        var (sut, backend) = CreateSut();

        await Run(sut, backend, seed: 1);
        await Run(sut, backend, seed: 1);

        Assert.Equal(2, backend.Calls);
    }

    [Fact]
    public async Task InvokeAsync_CacheOnAndSameCall_SecondIsServedFromCacheWithSameResult()
    {
        _options.Kernels[KernelContracts.MonteCarloEuropean] = new KernelOptions { Cache = true };
        var (sut, backend) = CreateSut();

        var first = await Run(sut, backend, seed: 1);
        var second = await Run(sut, backend, seed: 1);
        var other = await Run(sut, backend, seed: 2);

        Assert.Equal(2, backend.Calls);
        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task InvokeAsync_MoreResultsThanMaxEntries_OldestEvicted()
    {
        _options.Kernels[KernelContracts.MonteCarloEuropean] = new KernelOptions { Cache = true };
        _options.Cache.MaxEntries = 2;
        var (sut, backend) = CreateSut();

        await Run(sut, backend, seed: 1);
        await Run(sut, backend, seed: 2);
        await Run(sut, backend, seed: 3);
        await Run(sut, backend, seed: 1);

        Assert.Equal(2, sut.Cache.Count);
        Assert.Equal(4, backend.Calls);
    }

    [Fact]
    public async Task DropCollection_CachedTopKResults_Invalidated()
    {
        await using var services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Managed;
            o.Kernels[KernelContracts.SimilarityTopK] = new KernelOptions { Cache = true };
        }).BuildServiceProvider();
        var search = services.GetRequiredService<ISimilaritySearch>();
        var cache = services.GetRequiredService<KernelBackends>().Cache;
        await search.CreateCollectionAsync("c", new float[] { 1, 0, 0, 1 }, 2);

        var first = await search.TopKAsync("c", new float[] { 1, 0 }, 1);
        Assert.Equal(1, cache.Count);
        search.DropCollection("c");
        Assert.Equal(0, cache.Count);
        await search.CreateCollectionAsync("c", new float[] { 0, 1, 1, 0 }, 2);
        var second = await search.TopKAsync("c", new float[] { 1, 0 }, 1);

        Assert.Equal(0, first.Ids[0]);
        Assert.Equal(1, second.Ids[0]);
    }

    [Fact]
    public async Task PriceEuropeanAsync_KernelBackendOverride_RunsOnTheKernelsBackend()
    {
        await using var services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.Kernels[KernelContracts.MonteCarloEuropean] = new KernelOptions { Backend = BackendKind.Managed };
        }).BuildServiceProvider();

        var result = await services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(new[] { new EuropeanOption(1, 1, 0, 0.2, 1, OptionKind.Call) }, new MonteCarloSettings { Paths = 100 });

        Assert.Equal(BackendKind.Managed, result.Backend);
    }

    private (KernelBackends Sut, CountingBackend Backend) CreateSut()
    {
        var sut = new KernelBackends(new Monitor(_options), NullLoggerFactory.Instance, NativeLibraryFixture.EnsureLoaded());
        return (sut, new CountingBackend(sut.Managed));
    }

    private static async Task<double> Run(KernelBackends sut, IKernelBackend backend, long seed)
    {
        var prices = new double[1];
        using var call = new KernelCall(KernelContracts.European)
            .Input<double>(new double[] { 100, 100, 0.01, 0.2, 1, 1 }, 1, 6)
            .Input<long>(new long[] { 0 }, 1)
            .Output(prices.AsMemory(), 1)
            .Output(new double[1].AsMemory(), 1)
            .Param(2000L).Param(seed).Param(0L);
        await sut.InvokeAsync(backend, call, CancellationToken.None);
        return prices[0];
    }

    private sealed class Monitor(TandemOptions value) : IOptionsMonitor<TandemOptions>
    {
        public TandemOptions CurrentValue => value;

        public TandemOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<TandemOptions, string?> listener) => null;
    }

    /// <summary>The managed backend, counting the calls that reach it.</summary>
    private sealed class CountingBackend(IKernelBackend inner) : IKernelBackend
    {
        private int _calls;

        public int Calls => _calls;

        public BackendKind Kind => inner.Kind;

        public ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            return inner.InvokeAsync(call, cancellationToken);
        }

        public ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken) => inner.CreateStateAsync(kind, tensors, cancellationToken);

        public ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken) => inner.OpenStreamAsync(kernel, cancellationToken);
    }
}
