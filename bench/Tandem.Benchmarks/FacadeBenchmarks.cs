using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Internal.Contracts;
using Tandem.Kernels;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// The generated typed facade (<see cref="SimilarityTopkKernel"/>, over the
/// public <see cref="IKernelInvoker"/>) against the hand-written
/// <see cref="ISimilaritySearch.TopKAsync"/> on the tiny top-k of
/// <see cref="DispatcherBenchmarks"/>: n = 1,000, dim = 64, one query,
/// k = 10, native backend, batching off, both through the same pipeline.
/// The facade is declared (and so runs) first, so that a machine warming up
/// does not favour it. Each path reads its own copy of the collection; the
/// one created first measured up to 2 µs faster whichever path read it, so
/// the facade's copy is created first (docs/performance.md).
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class FacadeBenchmarks
{
    private ServiceProvider? _services;
    private ISimilaritySearch _search = null!;
    private SimilarityTopkKernel _topk = null!;
    private KernelState _collection = null!;
    private float[] _query = [];

    [GlobalSetup]
    public async Task Setup()
    {
        _services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
            o.Batching.Enabled = false;
        }).AddReferenceKernels().BuildServiceProvider();
        _search = _services.GetRequiredService<ISimilaritySearch>();
        _topk = _services.GetRequiredService<SimilarityTopkKernel>();
        var random = new Random(5);
        var vectors = GaussianData.Create(random, 1000 * 64);
        _query = GaussianData.Create(random, 64);
        _collection = await _services.GetRequiredService<VectorCollectionStateKind>().CreateAsync(vectors, 64);
        await _search.CreateCollectionAsync("tiny", vectors, 64);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _collection.Dispose();
        _services?.Dispose();
    }

    [Benchmark]
    public async Task<long> GeneratedFacade()
    {
        var result = await _topk.InvokeAsync(_collection, _query, dim: 64, k: 10);
        return result.Ids.Span[0];
    }

    [Benchmark(Baseline = true)]
    public async Task<long> HandWrittenTopKAsync()
    {
        var result = await _search.TopKAsync("tiny", _query, 10);
        return result.Ids[0];
    }
}
