using BenchmarkDotNet.Attributes;
using System.Runtime.Intrinsics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;
using Tandem.Pricing;

namespace Tandem.Benchmarks;

/// <summary>
/// <c>montecarlo.european</c> through <see cref="IOptionPricing"/>: 64
/// options × 1,000,000 paths (64 million paths per operation), Managed vs
/// Native, same seed and streams. Paths per second = 64e6 / time. Setup
/// prints the SIMD path each side runs (<c>TANDEM_ISA</c> and
/// <c>DOTNET_EnableAVX512F=0</c> reach the benchmark process), so a run that
/// emulates an AVX2-only machine can be told from one that does not.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[WarmupCount(2)]
[IterationCount(7)]
public class MonteCarloBenchmarks
{
    public const int Options = 64;
    public const long PathsPerOption = 1_000_000;

    private ServiceProvider? _services;
    private IOptionPricing _pricing = null!;
    private EuropeanOption[] _options = [];
    private MonteCarloSettings _settings = null!;

    [Params(BackendKind.Managed, BackendKind.Native)]
    public BackendKind Backend { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = Backend;
            o.FallbackToManaged = false;
        }).BuildServiceProvider();
        _pricing = _services.GetRequiredService<IOptionPricing>();
        _options = new EuropeanOption[Options];
        for (var i = 0; i < Options; i++)
        {
            _options[i] = new EuropeanOption(80 + i, 100, 0.02, 0.1 + (0.005 * i), 0.25 + (0.05 * i), i % 2 == 0 ? OptionKind.Call : OptionKind.Put);
        }

        _settings = new MonteCarloSettings { Paths = PathsPerOption, Seed = 7 };
        if (Backend == BackendKind.Native)
        {
            var native = _services.GetRequiredService<KernelBackends>().Native;
            Console.WriteLine($"// libtandem: {native.Info.ComputeThreads} compute threads, {NativeRuntime.IsaName(native.Info.Isa)} kernels, {native.LibraryPath}");
        }
        else
        {
            Console.WriteLine($"// managed: Vector512 accelerated {Vector512.IsHardwareAccelerated}, Vector256 accelerated {Vector256.IsHardwareAccelerated}");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services?.Dispose();

    [Benchmark]
    public ValueTask<OptionPrices> Price() => _pricing.PriceEuropeanAsync(_options, _settings);
}
