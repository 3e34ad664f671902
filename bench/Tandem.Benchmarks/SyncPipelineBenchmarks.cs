using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;

namespace Tandem.Benchmarks;

/// <summary>
/// What the synchronous pipeline (admission, contract validation, the work
/// bound, the circuit breaker, telemetry) adds to a small native call: BLAKE3
/// of 64 bytes through <see cref="IBlake3Hashing.Hash"/>, against the bare
/// native call it ends in — the same prepared <c>hash.blake3</c> call on the
/// same library, with its buffers pinned once and no pipeline — and the
/// backend alone (the kernel's lookup in the current library generation).
/// Issue 13, item 2: the pipeline adds at most 100 ns and allocates nothing
/// but the 32-byte digest.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public unsafe class SyncPipelineBenchmarks
{
    private const int InputBytes = 64;
    private const int DigestBytes = 32;

    private ServiceProvider _services = null!;
    private IBlake3Hashing _hashing = null!;
    private NativeKernel _kernel = null!;
    private IInProcessKernelBackend _backend = null!;
    private byte[] _data = [];
    private byte[] _digest = [];
    private NativeCallArgs _args;
    private KernelCall _call = null!;
    private KernelBackends _backends = null!;

    [GlobalSetup]
    public void Setup()
    {
        _services = new ServiceCollection().AddTandem(o => { o.Backend = BackendKind.Native; o.FallbackToManaged = false; }).BuildServiceProvider();
        _hashing = _services.GetRequiredService<IBlake3Hashing>();
        var backends = _services.GetRequiredService<KernelBackends>();
        _backends = backends;
        _kernel = backends.Native.Kernel(KernelContracts.HashBlake3, out var refusal) ?? throw refusal!;
        _backend = backends.InProcessFor(KernelContracts.HashBlake3, InputBytes);
        Console.WriteLine($"// libtandem: {backends.Native.Info.ComputeThreads} compute threads, {NativeRuntime.IsaName(backends.Native.Info.Isa)} kernels");

        _data = GC.AllocateArray<byte>(InputBytes, pinned: true);
        new Random(4).NextBytes(_data);
        _digest = GC.AllocateArray<byte>(DigestBytes, pinned: true);
        _args = default;
        _args.AddInput(NativeTensor.Create((byte*)Unsafe.AsPointer(ref _data[0]), InputBytes, NativeDType.U8, InputBytes));
        _args.AddOutput(NativeTensor.Create((byte*)Unsafe.AsPointer(ref _digest[0]), DigestBytes, NativeDType.U8, DigestBytes));
        _call = new KernelCall(KernelContracts.Blake3)
            .Input((byte*)Unsafe.AsPointer(ref _data[0]), InputBytes, InputBytes)
            .Output((byte*)Unsafe.AsPointer(ref _digest[0]), DigestBytes, DigestBytes);

        // Warm every path once (the prepared-call table prepares a shape on its second sighting).
        for (var i = 0; i < 3; i++)
        {
            BareNativeCall();
            Backend();
            Dispatched();
            Pipeline();
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

    /// <summary>The anchor: the prepared native call, no pipeline.</summary>
    [Benchmark(Baseline = true)]
    public void BareNativeCall()
    {
        var context = default(NativeCallContext);
        _kernel.InvokePrepared(0, ref _args, ref context);
    }

    /// <summary>
    /// The same bare call with the deadline every pipeline call carries
    /// (<see cref="TandemOptions.CallTimeout"/>, 30 s by default): the library
    /// reads the clock to set it and again before running the kernel.
    /// </summary>
    [Benchmark]
    public void BareNativeCallWithDeadline()
    {
        var context = NativeKernel.CallContext(TandemOptions.DefaultCallTimeout, 0);
        _kernel.InvokePrepared(0, ref _args, ref context);
    }

    /// <summary>The native backend alone, with a call built once: the kernel's lookup, the call's context, the prepared call.</summary>
    [Benchmark]
    public void Backend() => _backend.Invoke(_call);

    /// <summary>The pipeline without the facade: validation, admission, breaker and telemetry around <see cref="Backend"/>, with a call built once.</summary>
    [Benchmark]
    public void Dispatched() => _backends.Invoke(_backend, _call);

    /// <summary>The whole synchronous pipeline into the caller's buffer: what item 2's targets are about.</summary>
    [Benchmark]
    public void Pipeline() => _hashing.Hash(_data, _digest);

    /// <summary>The whole synchronous pipeline, the digest array included.</summary>
    [Benchmark]
    public byte[] PipelineNewArray() => _hashing.Hash(_data);
}
