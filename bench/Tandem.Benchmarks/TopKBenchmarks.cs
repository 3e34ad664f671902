using BenchmarkDotNet.Attributes;
using System.Runtime.Intrinsics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// <c>similarity.topk</c> through the public <see cref="ISimilaritySearch"/>
/// facade: 200,000 Gaussian vectors of dimension 384, k = 10, dot product,
/// one query or a batch of 64. bench/baseline/openblas_topk.py times the
/// same shapes with numpy's BLAS.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
// A fixed count keeps the class to a couple of minutes on two cores. These
// attributes adjust whichever job runs, so `--job dry` still gives a smoke
// run rather than adding a second, full job as [SimpleJob] would.
[WarmupCount(3)]
[IterationCount(15)]
public class TopKBenchmarks
{
    public const int VectorCount = 200_000;
    public const int Dimension = 384;
    public const int K = 10;
    private const string CollectionName = "bench";

    private ServiceProvider? _services;
    private ISimilaritySearch _search = null!;
    private float[] _queries = [];

    [Params(BackendKind.Managed, BackendKind.Native)]
    public BackendKind Backend { get; set; }

    [Params(1, 64)]
    public int Batch { get; set; }

    [GlobalSetup]
    public async Task Setup()
    {
        _services = new ServiceCollection()
            .AddTandem(o =>
            {
                o.Backend = Backend;
                o.FallbackToManaged = false;
            })
            .BuildServiceProvider();
        _search = _services.GetRequiredService<ISimilaritySearch>();

        var random = new Random(20_240_601);
        var vectors = GaussianData.Create(random, VectorCount * Dimension);
        _queries = GaussianData.Create(random, Batch * Dimension);

        var info = await _search.CreateCollectionAsync(CollectionName, vectors, Dimension);
        if (info.Backend != Backend)
        {
            throw new InvalidOperationException($"the collection landed on {info.Backend}, not {Backend}");
        }

        if (Backend == BackendKind.Native)
        {
            var native = _services.GetRequiredService<KernelBackends>().Native;
            Console.WriteLine($"// libtandem: {native.Info.ComputeThreads} compute threads, {NativeRuntime.IsaName(native.Info.Isa)} kernels, {native.LibraryPath}");
        }
        else
        {
            // DOTNET_EnableAVX512F=0 turns Vector512 (and TensorPrimitives' 512-bit paths) off.
            Console.WriteLine($"// managed: Vector512 accelerated {Vector512.IsHardwareAccelerated}, Vector256 accelerated {Vector256.IsHardwareAccelerated}");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services?.Dispose();

    [Benchmark]
    public ValueTask<TopKResult> TopK() => _search.TopKAsync(CollectionName, _queries, K, SimilarityMetric.Dot);
}

/// <summary>Standard normal samples from a seeded generator, so every run scores the same data.</summary>
internal static class GaussianData
{
    public static float[] Create(Random random, int length)
    {
        var values = new float[length];
        // Box–Muller: each pair of uniforms gives two independent normals.
        for (var i = 0; i < length; i += 2)
        {
            var radius = Math.Sqrt(-2.0 * Math.Log(1.0 - random.NextDouble()));
            var (sin, cos) = Math.SinCos(2.0 * Math.PI * random.NextDouble());
            values[i] = (float)(radius * cos);
            if (i + 1 < length)
            {
                values[i + 1] = (float)(radius * sin);
            }
        }

        return values;
    }
}
