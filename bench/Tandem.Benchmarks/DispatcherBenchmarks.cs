using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// What the dispatch pipeline (validation, admission, in-flight gate,
/// resilience, telemetry) adds to a tiny native call: top-k over n = 1,000,
/// dim = 64, one query, k = 10, batching off. "Direct" builds the same
/// pinned call and hands it straight to the native backend.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class DispatcherBenchmarks
{
    private ServiceProvider? _services;
    private ISimilaritySearch _search = null!;
    private KernelBackends _backends = null!;
    private IInProcessKernelBackend _native = null!;
    private IKernelState _collection = null!;
    private float[] _query = [];
    private long[] _ids = new long[10];
    private float[] _scores = new float[10];

    [GlobalSetup]
    public async Task Setup()
    {
        _services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
            o.Batching.Enabled = false;
        }).BuildServiceProvider();
        _search = _services.GetRequiredService<ISimilaritySearch>();
        _backends = _services.GetRequiredService<KernelBackends>();
        _native = _backends.InProcessFor(KernelContracts.SimilarityTopK);
        var random = new Random(5);
        var vectors = GaussianData.Create(random, 1000 * 64);
        _query = GaussianData.Create(random, 64);
        await _search.CreateCollectionAsync("tiny", vectors, 64);
        using var tensors = new KernelCall(KernelContracts.TopK).Input<float>(vectors, 1000, 64).Absent();
        _collection = _native.CreateState(KernelContracts.CollectionKind, tensors);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _collection.Dispose();
        _services?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public async Task<long> DirectBackendCall()
    {
        using var call = new KernelCall(KernelContracts.TopK) { State = _collection, Work = 64_000 };
        call.Input<float>(_query, 1, 64).Output(_ids.AsMemory(), 1, 10).Output(_scores.AsMemory(), 1, 10).Param(10L).Param(0L);
        await _native.InvokeAsync(call, CancellationToken.None);
        return _ids[0];
    }

    [Benchmark]
    public async Task<long> ThroughDispatcher()
    {
        var result = await _search.TopKAsync("tiny", _query, 10);
        return result.Ids[0];
    }
}
