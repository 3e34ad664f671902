using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;

namespace Tandem.Benchmarks;

/// <summary>
/// What one crossing into libtandem.so costs, measured with
/// <c>diagnostics.noop</c> and two 64-byte u8 tensors pinned once: the raw
/// call through the library's function pointer, the <see cref="NativeKernel"/>
/// wrapper, and submission to the native compute pool awaited to completion.
/// An empty managed call is the floor for reference.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public unsafe class BoundaryBenchmarks
{
    private const int TensorBytes = 64;

    private NativeKernel _noop = null!;
    private NativeLibraryBinding _library = null!;
    private nint _noopHandle;
    private byte[] _a = [];
    private byte[] _b = [];
    private NativeTensor[] _inputs = [];

    [GlobalSetup]
    public void Setup()
    {
        var runtime = NativeRuntime.Load(null, KernelContracts.All, NullLogger.Instance);
        if (runtime.LoadError is { } loadError)
        {
            throw loadError;
        }

        _noop = runtime.Kernel(KernelContracts.DiagnosticsNoop, out var refusal) ?? throw refusal!;
        _library = runtime.Binding;
        _noopHandle = runtime.Find(KernelContracts.DiagnosticsNoop);
        Console.WriteLine($"// libtandem: {runtime.Info.ComputeThreads} compute threads, {NativeRuntime.IsaName(runtime.Info.Isa)} kernels");

        // The pinned object heap keeps the tensors and their headers at fixed
        // addresses, so no benchmark pays for pinning.
        _a = GC.AllocateArray<byte>(TensorBytes, pinned: true);
        _b = GC.AllocateArray<byte>(TensorBytes, pinned: true);
        _inputs = GC.AllocateArray<NativeTensor>(2, pinned: true);
        _inputs[0] = NativeTensor.Create((byte*)Unsafe.AsPointer(ref _a[0]), TensorBytes, NativeDType.U8, TensorBytes);
        _inputs[1] = NativeTensor.Create((byte*)Unsafe.AsPointer(ref _b[0]), TensorBytes, NativeDType.U8, TensorBytes);
    }

    [Benchmark]
    public void EmptyManagedCall() => Empty();

    [Benchmark]
    public void SyncRawPInvoke()
    {
        var context = default(NativeCallContext);
        var inputs = (NativeTensor*)Unsafe.AsPointer(ref _inputs[0]);
        NativeErrors.ThrowIfError(_library, _library.tandem_kernel_invoke(_noopHandle, 0, inputs, 2, null, 0, null, 0, &context), KernelContracts.DiagnosticsNoop);
    }

    [Benchmark]
    public void SyncInvoke()
    {
        var context = default(NativeCallContext);
        _noop.Invoke(0, _inputs, [], [], ref context);
    }

    /// <summary>Queue on a Rust compute thread, run, call back, resume on the thread pool.</summary>
    [Benchmark]
    public ValueTask AsyncSubmit()
    {
        var context = default(NativeCallContext);
        return _noop.Submit(0, _inputs, [], [], ref context);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Empty()
    {
    }
}
