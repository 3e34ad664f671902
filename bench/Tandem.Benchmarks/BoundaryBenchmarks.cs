using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;

namespace Tandem.Benchmarks;

/// <summary>
/// What one crossing into libtandem.so costs, measured with
/// <c>diagnostics.noop</c> and two 64-byte u8 tensors pinned once: the raw
/// call through the library's function pointer, the <see cref="NativeKernel"/>
/// wrapper, and submission to the native compute pool awaited to completion.
/// An empty managed call is the floor for reference; a static
/// [LibraryImport] of the same export is the baseline for the function
/// pointer; the lookup in the current generation is what the backend adds.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public unsafe partial class BoundaryBenchmarks
{
    private const int TensorBytes = 64;

    private NativeKernel _noop = null!;
    private NativeLibraryBinding _library = null!;
    private static nint _importedLibrary;
    private ServiceProvider _services = null!;
    private NativeLibraryHost _host = null!;
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
        // The [LibraryImport] baseline binds to the very same loaded library
        // (the resolver can be set once per assembly; in-process runs call Setup again).
        if (Interlocked.Exchange(ref _importedLibrary, runtime.Binding.Library) == 0)
        {
            NativeLibrary.SetDllImportResolver(typeof(BoundaryBenchmarks).Assembly, static (name, _, _) => name == "tandem" ? _importedLibrary : 0);
        }

        _services = new ServiceCollection().AddTandem().BuildServiceProvider();
        _host = _services.GetRequiredService<KernelBackends>().NativeHost;
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

    /// <summary>The same call through a static [LibraryImport] (how the library was bound before hot swap).</summary>
    [Benchmark]
    public void SyncRawLibraryImport()
    {
        var context = default(NativeCallContext);
        var inputs = (NativeTensor*)Unsafe.AsPointer(ref _inputs[0]);
        NativeErrors.ThrowIfError(_library, tandem_kernel_invoke(_noopHandle, 0, inputs, 2, null, 0, null, 0, &context), KernelContracts.DiagnosticsNoop);
    }

    /// <summary><see cref="SyncInvoke"/> with the kernel looked up in the current library generation, as every backend call does.</summary>
    [Benchmark]
    public void SyncInvokeCurrentGeneration()
    {
        var kernel = _host.Generation.Runtime.Kernel(KernelContracts.DiagnosticsNoop, out var refusal) ?? throw refusal!;
        var context = default(NativeCallContext);
        kernel.Invoke(0, _inputs, [], [], ref context);
    }

    [GlobalCleanup]
    public void Cleanup() => _services.Dispose();

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

    [LibraryImport("tandem")]
    private static partial nint tandem_kernel_invoke(
        nint kernel, nint state,
        NativeTensor* inputs, nuint inputCount,
        NativeParam* parameters, nuint paramCount,
        NativeTensor* outputs, nuint outputCount,
        NativeCallContext* context);
}
