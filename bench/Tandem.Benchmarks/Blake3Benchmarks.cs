using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;

namespace Tandem.Benchmarks;

/// <summary>
/// <c>hash.blake3</c> over 1 GiB in memory: Native one-shot, Native streaming
/// in 1 MiB chunks (synchronous, and asynchronous — which completes
/// synchronously in process, so it allocates no more), Managed one-shot, and the b3sum CLI on the same bytes
/// from /dev/shm (process start included, ~1 ms). Throughput = 1 GiB / time.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
[WarmupCount(2)]
[IterationCount(7)]
public class Blake3Benchmarks
{
    private const int Size = 1 << 30;
    private const int Chunk = 1 << 20;
    private readonly string _shmPath = $"/dev/shm/tandem-bench-{Environment.ProcessId}.bin";
    private ServiceProvider? _native;
    private ServiceProvider? _managed;
    private IBlake3Hashing _nativeHashing = null!;
    private IBlake3Hashing _managedHashing = null!;
    private byte[] _data = [];

    [GlobalSetup]
    public void Setup()
    {
        _data = GC.AllocateUninitializedArray<byte>(Size);
        new Random(3).NextBytes(_data);
        File.WriteAllBytes(_shmPath, _data);
        (_native, _nativeHashing) = Create(BackendKind.Native);
        (_managed, _managedHashing) = Create(BackendKind.Managed);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        File.Delete(_shmPath);
        _native?.Dispose();
        _managed?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public string B3sumFromShm()
    {
        using var process = Process.Start(new ProcessStartInfo("b3sum", ["--no-names", _shmPath]) { RedirectStandardOutput = true })!;
        var digest = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return digest;
    }

    [Benchmark]
    public byte[] NativeOneShot() => _nativeHashing.Hash(_data);

    [Benchmark]
    public byte[] NativeStreaming1MiB()
    {
        using var stream = _nativeHashing.OpenStream();
        for (var offset = 0; offset < Size; offset += Chunk)
        {
            stream.Append(_data.AsSpan(offset, Chunk));
        }

        return stream.Finalize();
    }

    [Benchmark]
    public async Task<byte[]> NativeStreamingAsync1MiB()
    {
        await using var stream = await _nativeHashing.OpenStreamAsync();
        for (var offset = 0; offset < Size; offset += Chunk)
        {
            await stream.AppendAsync(_data.AsMemory(offset, Chunk));
        }

        return await stream.FinalizeAsync();
    }

    [Benchmark]
    public byte[] ManagedOneShot() => _managedHashing.Hash(_data);

    internal static (ServiceProvider, IBlake3Hashing) Create(BackendKind backend)
    {
        var services = new ServiceCollection().AddTandem(o => { o.Backend = backend; o.FallbackToManaged = false; }).BuildServiceProvider();
        return (services, services.GetRequiredService<IBlake3Hashing>());
    }
}

/// <summary>BLAKE3 of 64 bytes per call, where the cost of the call dominates.</summary>
[MemoryDiagnoser]
[MedianColumn]
public class Blake3SmallInputBenchmarks
{
    private readonly byte[] _data = new byte[64];
    private ServiceProvider? _native;
    private ServiceProvider? _managed;
    private IBlake3Hashing _nativeHashing = null!;
    private IBlake3Hashing _managedHashing = null!;

    [GlobalSetup]
    public void Setup()
    {
        new Random(4).NextBytes(_data);
        (_native, _nativeHashing) = Blake3Benchmarks.Create(BackendKind.Native);
        (_managed, _managedHashing) = Blake3Benchmarks.Create(BackendKind.Managed);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _native?.Dispose();
        _managed?.Dispose();
    }

    [Benchmark(Baseline = true)]
    public byte[] Native64Bytes() => _nativeHashing.Hash(_data);

    [Benchmark]
    public byte[] Managed64Bytes() => _managedHashing.Hash(_data);
}
