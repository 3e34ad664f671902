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
    private NativeSlice[] _slices = [];
    private nint _prepared;
    private nint _abiVersion;
    private nint _preparedInvoke;
    private NativeCallArgs _args;

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
        _slices = GC.AllocateArray<NativeSlice>(2, pinned: true);
        _slices[0] = new NativeSlice { Data = _inputs[0].Data, ByteLength = TensorBytes };
        _slices[1] = new NativeSlice { Data = _inputs[1].Data, ByteLength = TensorBytes };
        nint prepared = 0;
        NativeErrors.ThrowIfError(_library, _library.tandem_kernel_prepare(_noopHandle, (NativeTensor*)Unsafe.AsPointer(ref _inputs[0]), 2, null, 0, null, 0, &prepared), KernelContracts.DiagnosticsNoop);
        _prepared = prepared;
        _abiVersion = NativeLibrary.GetExport(_library.Library, "tandem_abi_version");
        _preparedInvoke = NativeLibrary.GetExport(_library.Library, "tandem_prepared_invoke");
        _args = default;
        _args.AddInput(_inputs[0]);
        _args.AddInput(_inputs[1]);
        // The table prepares a shape when it repeats: make it a repeat.
        var context = default(NativeCallContext);
        _noop.InvokePrepared(0, ref _args, ref context);
        _noop.InvokePrepared(0, ref _args, ref context);
    }

    /// <summary>The floor: a Rust export that returns a constant, through a function pointer with the GC transition.</summary>
    [Benchmark]
    public uint FloorRustExport() => ((delegate* unmanaged<uint>)_abiVersion)();

    /// <summary>The same export without the GC transition ([SuppressGCTransition]: legal here, it neither blocks nor calls back).</summary>
    [Benchmark]
    public uint FloorRustExportSuppressGCTransition() => ((delegate* unmanaged[SuppressGCTransition]<uint>)_abiVersion)();

    /// <summary>A prepared <c>diagnostics.noop</c>: two slices, no descriptor walk.</summary>
    [Benchmark]
    public void SyncPreparedRaw()
    {
        var slices = (NativeSlice*)Unsafe.AsPointer(ref _slices[0]);
        NativeErrors.ThrowIfError(_library, _library.tandem_prepared_invoke(_prepared, 0, ulong.MaxValue, slices, 2, null, 0, null), KernelContracts.DiagnosticsNoop);
    }

    /// <summary>
    /// <see cref="SyncPreparedRaw"/> without the GC transition: what a kernel
    /// that is known to finish in well under a microsecond without blocking
    /// could pay; not used by the backend, which cannot know that of a kernel.
    /// </summary>
    [Benchmark]
    public void SyncPreparedRawSuppressGCTransition()
    {
        var slices = (NativeSlice*)Unsafe.AsPointer(ref _slices[0]);
        var invoke = (delegate* unmanaged[SuppressGCTransition]<nint, nint, ulong, NativeSlice*, nuint, NativeSlice*, nuint, NativeCallContext*, nint>)_preparedInvoke;
        NativeErrors.ThrowIfError(_library, invoke(_prepared, 0, ulong.MaxValue, slices, 2, null, 0, null), KernelContracts.DiagnosticsNoop);
    }

    /// <summary>What the backend's synchronous path runs: the prepared-call table's lookup, then the prepared call.</summary>
    [Benchmark]
    public void SyncInvokePrepared()
    {
        var context = default(NativeCallContext);
        _noop.InvokePrepared(0, ref _args, ref context);
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
    public void Cleanup()
    {
        _library.tandem_prepared_free(_prepared);
        _services.Dispose();
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

    [LibraryImport("tandem")]
    private static partial nint tandem_kernel_invoke(
        nint kernel, nint state,
        NativeTensor* inputs, nuint inputCount,
        NativeParam* parameters, nuint paramCount,
        NativeTensor* outputs, nuint outputCount,
        NativeCallContext* context);
}
