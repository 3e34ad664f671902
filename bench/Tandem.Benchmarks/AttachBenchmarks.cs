using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;

namespace Tandem.Benchmarks;

/// <summary>
/// Attaching a kernel library in the host: load, ABI and status checks
/// (the library's registration runs here), describe, and binding each
/// expected kernel by hash. Every invocation loads a fresh copy (a new
/// path), as a first attach or a hot swap does; the fixture library is not
/// Tandem's, libtandem.so is the reference kernels'. Libraries are never
/// unloaded, so the process keeps each copy mapped (a bounded count).
/// </summary>
[SimpleJob(RunStrategy.ColdStart, launchCount: 1, warmupCount: 2, iterationCount: 30)]
[MinColumn, MedianColumn, MaxColumn]
public class AttachBenchmarks
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("tandem-attach-");
    private string _next = "";
    private int _copies;

    [Params("libtandem.so", "libtandem_fixture_kernels.so")]
    public string Library { get; set; } = "";

    [IterationSetup]
    public void CopyLibrary()
    {
        _next = Path.Combine(_directory.FullName, $"{_copies++}-{Library}");
        File.Copy(Path.Combine(AppContext.BaseDirectory, Library), _next);
    }

    [Benchmark]
    public object Attach()
    {
        var runtime = NativeRuntime.Load(_next, KernelContracts.All, NullLogger.Instance);
        return runtime.LoadError is null ? runtime : throw runtime.LoadError;
    }

    [GlobalCleanup]
    public void Cleanup() => _directory.Delete(recursive: true);
}
