using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>
/// One loaded copy of libtandem.so and its exports (native/sdk/include/tandem.h)
/// as unmanaged function pointers. Two bindings of two files are two
/// independent libraries (own registry, compute pool and stream table), which
/// is what lets a new build load beside the old one. Everything a binding
/// hands out (errors, states, streams, cancel tokens) is freed through the
/// same binding.
/// </summary>
/// <remarks>
/// Calls through these pointers cost what [LibraryImport] costs for blittable
/// signatures: one indirect call with a GC transition.
/// </remarks>
internal sealed unsafe class NativeLibraryBinding
{
    // Named after the C exports they call.
    public readonly delegate* unmanaged<uint> tandem_abi_version;
    public readonly delegate* unmanaged<nint> tandem_layout_table;
    public readonly delegate* unmanaged<nint, int> tandem_error_code;
    public readonly delegate* unmanaged<nint, nint> tandem_error_message;
    public readonly delegate* unmanaged<nint, void> tandem_error_free;
    public readonly delegate* unmanaged<NativeBuffer*, nint> tandem_kernels_describe;
    public readonly delegate* unmanaged<NativeBuffer*, void> tandem_buffer_free;
    public readonly delegate* unmanaged<byte*, nuint, nint*, nint> tandem_kernel_find;
    public readonly delegate* unmanaged<nint, nint, NativeTensor*, nuint, NativeParam*, nuint, NativeTensor*, nuint, NativeCallContext*, nint> tandem_kernel_invoke;
    public readonly delegate* unmanaged<nint, nint, NativeTensor*, nuint, NativeParam*, nuint, NativeTensor*, nuint, NativeCallContext*, delegate* unmanaged<nint, nint, void>, nint, nint> tandem_kernel_submit;
    public readonly delegate* unmanaged<byte*, nuint, NativeTensor*, nuint, nint*, nint> tandem_state_create;
    public readonly delegate* unmanaged<nint, void> tandem_state_free;
    public readonly delegate* unmanaged<nint, ulong> tandem_state_size_bytes;
    public readonly delegate* unmanaged<nint> tandem_cancel_new;
    public readonly delegate* unmanaged<nint, void> tandem_cancel_set;
    public readonly delegate* unmanaged<nint, void> tandem_cancel_free;
    public readonly delegate* unmanaged<NativeRuntimeInfo*, nint> tandem_runtime_info;
    public readonly delegate* unmanaged<uint, uint> tandem_log_set_level;
    public readonly delegate* unmanaged<nint, ulong*, nint> tandem_stream_open;
    public readonly delegate* unmanaged<ulong, byte*, nuint, nint> tandem_stream_update;
    public readonly delegate* unmanaged<ulong, byte*, nuint, nint> tandem_stream_finalize;
    public readonly delegate* unmanaged<ulong, nint> tandem_stream_free;

    /// <summary>Since ABI 1.1; null in an older library.</summary>
    public readonly delegate* unmanaged<nint> tandem_library_status;

    /// <summary>Prepared calls, since ABI 1.2; all four null in an older library.</summary>
    public readonly delegate* unmanaged<nint, NativeTensor*, nuint, NativeParam*, nuint, NativeTensor*, nuint, nint*, nint> tandem_kernel_prepare;

    /// <inheritdoc cref="tandem_kernel_prepare"/>
    public readonly delegate* unmanaged<nint, nint, ulong, NativeSlice*, nuint, NativeSlice*, nuint, NativeCallContext*, nint> tandem_prepared_invoke;

    /// <inheritdoc cref="tandem_kernel_prepare"/>
    public readonly delegate* unmanaged<nint, uint> tandem_prepared_varies_rows;

    /// <inheritdoc cref="tandem_kernel_prepare"/>
    public readonly delegate* unmanaged<nint, void> tandem_prepared_free;

    /// <summary>The state repository, since ABI 1.3; all seven null in an older library.</summary>
    public readonly delegate* unmanaged<byte*, nuint, byte*, nuint, byte*, nuint, ulong, NativeTensor*, nuint, nint*, NativeBuffer*, nint> tandem_state_store;

    /// <inheritdoc cref="tandem_state_store"/>
    public readonly delegate* unmanaged<byte*, nuint, byte*, nuint, ulong, nint*, NativeBuffer*, nint> tandem_state_load;

    /// <inheritdoc cref="tandem_state_store"/>
    public readonly delegate* unmanaged<byte*, nuint, NativeBuffer*, nint> tandem_repository_list;

    /// <inheritdoc cref="tandem_state_store"/>
    public readonly delegate* unmanaged<byte*, nuint, byte*, nuint, ulong, nint> tandem_repository_remove;

    /// <inheritdoc cref="tandem_state_store"/>
    public readonly delegate* unmanaged<byte*, nuint, byte*, nuint, ulong, nint*, NativeBuffer*, nint> tandem_stored_open;

    /// <inheritdoc cref="tandem_state_store"/>
    public readonly delegate* unmanaged<nint, NativeTensor*, nuint, nuint*, nint> tandem_stored_tensors;

    /// <inheritdoc cref="tandem_state_store"/>
    public readonly delegate* unmanaged<nint, void> tandem_stored_free;

    private NativeLibraryBinding(string path, nint library)
    {
        Path = path;
        Library = library;
        tandem_abi_version = (delegate* unmanaged<uint>)Export(nameof(tandem_abi_version));
        tandem_layout_table = (delegate* unmanaged<nint>)Export(nameof(tandem_layout_table));
        tandem_error_code = (delegate* unmanaged<nint, int>)Export(nameof(tandem_error_code));
        tandem_error_message = (delegate* unmanaged<nint, nint>)Export(nameof(tandem_error_message));
        tandem_error_free = (delegate* unmanaged<nint, void>)Export(nameof(tandem_error_free));
        tandem_kernels_describe = (delegate* unmanaged<NativeBuffer*, nint>)Export(nameof(tandem_kernels_describe));
        tandem_buffer_free = (delegate* unmanaged<NativeBuffer*, void>)Export(nameof(tandem_buffer_free));
        tandem_kernel_find = (delegate* unmanaged<byte*, nuint, nint*, nint>)Export(nameof(tandem_kernel_find));
        tandem_kernel_invoke = (delegate* unmanaged<nint, nint, NativeTensor*, nuint, NativeParam*, nuint, NativeTensor*, nuint, NativeCallContext*, nint>)Export(nameof(tandem_kernel_invoke));
        tandem_kernel_submit = (delegate* unmanaged<nint, nint, NativeTensor*, nuint, NativeParam*, nuint, NativeTensor*, nuint, NativeCallContext*, delegate* unmanaged<nint, nint, void>, nint, nint>)Export(nameof(tandem_kernel_submit));
        tandem_state_create = (delegate* unmanaged<byte*, nuint, NativeTensor*, nuint, nint*, nint>)Export(nameof(tandem_state_create));
        tandem_state_free = (delegate* unmanaged<nint, void>)Export(nameof(tandem_state_free));
        tandem_state_size_bytes = (delegate* unmanaged<nint, ulong>)Export(nameof(tandem_state_size_bytes));
        tandem_cancel_new = (delegate* unmanaged<nint>)Export(nameof(tandem_cancel_new));
        tandem_cancel_set = (delegate* unmanaged<nint, void>)Export(nameof(tandem_cancel_set));
        tandem_cancel_free = (delegate* unmanaged<nint, void>)Export(nameof(tandem_cancel_free));
        tandem_runtime_info = (delegate* unmanaged<NativeRuntimeInfo*, nint>)Export(nameof(tandem_runtime_info));
        tandem_log_set_level = (delegate* unmanaged<uint, uint>)Export(nameof(tandem_log_set_level));
        tandem_stream_open = (delegate* unmanaged<nint, ulong*, nint>)Export(nameof(tandem_stream_open));
        tandem_stream_update = (delegate* unmanaged<ulong, byte*, nuint, nint>)Export(nameof(tandem_stream_update));
        tandem_stream_finalize = (delegate* unmanaged<ulong, byte*, nuint, nint>)Export(nameof(tandem_stream_finalize));
        tandem_stream_free = (delegate* unmanaged<ulong, nint>)Export(nameof(tandem_stream_free));
        tandem_library_status = (delegate* unmanaged<nint>)OptionalExport(nameof(tandem_library_status));
        var prepare = OptionalExport(nameof(tandem_kernel_prepare));
        var invoke = OptionalExport(nameof(tandem_prepared_invoke));
        var rows = OptionalExport(nameof(tandem_prepared_varies_rows));
        var free = OptionalExport(nameof(tandem_prepared_free));
        // All or nothing: a library with only some of them is treated as older.
        if (prepare != 0 && invoke != 0 && rows != 0 && free != 0)
        {
            tandem_kernel_prepare = (delegate* unmanaged<nint, NativeTensor*, nuint, NativeParam*, nuint, NativeTensor*, nuint, nint*, nint>)prepare;
            tandem_prepared_invoke = (delegate* unmanaged<nint, nint, ulong, NativeSlice*, nuint, NativeSlice*, nuint, NativeCallContext*, nint>)invoke;
            tandem_prepared_varies_rows = (delegate* unmanaged<nint, uint>)rows;
            tandem_prepared_free = (delegate* unmanaged<nint, void>)free;
        }

        nint[] repository =
        [
            OptionalExport(nameof(tandem_state_store)), OptionalExport(nameof(tandem_state_load)),
            OptionalExport(nameof(tandem_repository_list)), OptionalExport(nameof(tandem_repository_remove)),
            OptionalExport(nameof(tandem_stored_open)), OptionalExport(nameof(tandem_stored_tensors)),
            OptionalExport(nameof(tandem_stored_free)),
        ];
        if (!repository.Contains(0))
        {
            tandem_state_store = (delegate* unmanaged<byte*, nuint, byte*, nuint, byte*, nuint, ulong, NativeTensor*, nuint, nint*, NativeBuffer*, nint>)repository[0];
            tandem_state_load = (delegate* unmanaged<byte*, nuint, byte*, nuint, ulong, nint*, NativeBuffer*, nint>)repository[1];
            tandem_repository_list = (delegate* unmanaged<byte*, nuint, NativeBuffer*, nint>)repository[2];
            tandem_repository_remove = (delegate* unmanaged<byte*, nuint, byte*, nuint, ulong, nint>)repository[3];
            tandem_stored_open = (delegate* unmanaged<byte*, nuint, byte*, nuint, ulong, nint*, NativeBuffer*, nint>)repository[4];
            tandem_stored_tensors = (delegate* unmanaged<nint, NativeTensor*, nuint, nuint*, nint>)repository[5];
            tandem_stored_free = (delegate* unmanaged<nint, void>)repository[6];
        }
    }

    /// <summary>The file the library was loaded from.</summary>
    public string Path { get; }

    /// <summary>The dynamic loader's handle of the library.</summary>
    public nint Library { get; }

    /// <summary>
    /// Loads the library at <paramref name="path"/> and resolves every export.
    /// Throws <see cref="DllNotFoundException"/> (missing file, not a shared
    /// library), <see cref="BadImageFormatException"/> (a truncated file) or
    /// <see cref="EntryPointNotFoundException"/> (an export missing).
    /// </summary>
    /// <remarks>
    /// The library is never unloaded: a Rust cdylib that has run keeps compute
    /// threads parked inside its code and registers thread-local destructors,
    /// so dlclose would either be deferred by glibc or unmap code still in use.
    /// </remarks>
    public static NativeLibraryBinding Load(string path)
    {
        // A truncated file would be mapped and then kill the process (SIGBUS): refuse it first.
        if (File.Exists(path))
        {
            ElfImage.CheckComplete(path);
        }

        return new(path, NativeLibrary.Load(path));
    }

    /// <summary>
    /// Unloads a library that has only been asked its ABI version: no Rust
    /// thread was started and no thread-local registered, so unmapping it is safe.
    /// </summary>
    public void FreeUnused() => NativeLibrary.Free(Library);

    /// <summary>Turns the library's per-call JSON log lines on or off.</summary>
    public void SetCallLog(bool enabled) => tandem_log_set_level(enabled ? 1u : 0u);

    /// <summary>Whether the library has prepared calls (ABI 1.2 and later).</summary>
    public bool HasPreparedCalls => tandem_prepared_invoke != null;

    /// <summary>Whether the library has the state repository (ABI 1.3 and later).</summary>
    public bool HasStateRepository => tandem_stored_free != null;

    private nint Export(string name) => NativeLibrary.GetExport(Library, name);

    private nint OptionalExport(string name) => NativeLibrary.TryGetExport(Library, name, out var address) ? address : 0;
}
