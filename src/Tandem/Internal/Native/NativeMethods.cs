using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>P/Invoke declarations for libtandem.so (native/ffi/include/tandem.h).</summary>
internal static unsafe partial class NativeMethods
{
    public const string Library = "tandem";

    [LibraryImport(Library)]
    public static partial uint tandem_abi_version();

    [LibraryImport(Library)]
    public static partial nint tandem_layout_table();

    [LibraryImport(Library)]
    public static partial int tandem_error_code(nint error);

    [LibraryImport(Library)]
    public static partial nint tandem_error_message(nint error);

    [LibraryImport(Library)]
    public static partial void tandem_error_free(nint error);

    [LibraryImport(Library)]
    public static partial nint tandem_kernels_describe(NativeBuffer* output);

    [LibraryImport(Library)]
    public static partial void tandem_buffer_free(NativeBuffer* buffer);

    [LibraryImport(Library)]
    public static partial nint tandem_kernel_find(byte* name, nuint nameLength, nint* output);

    [LibraryImport(Library)]
    public static partial nint tandem_kernel_invoke(
        nint kernel, nint state,
        NativeTensor* inputs, nuint inputCount,
        NativeParam* parameters, nuint paramCount,
        NativeTensor* outputs, nuint outputCount,
        NativeCallContext* context);

    [LibraryImport(Library)]
    public static partial nint tandem_kernel_submit(
        nint kernel, nint state,
        NativeTensor* inputs, nuint inputCount,
        NativeParam* parameters, nuint paramCount,
        NativeTensor* outputs, nuint outputCount,
        NativeCallContext* context,
        delegate* unmanaged<nint, nint, void> callback, nint userData);

    [LibraryImport(Library)]
    public static partial nint tandem_state_create(byte* kind, nuint kindLength, NativeTensor* tensors, nuint count, nint* output);

    [LibraryImport(Library)]
    public static partial void tandem_state_free(nint state);

    [LibraryImport(Library)]
    public static partial ulong tandem_state_size_bytes(nint state);

    [LibraryImport(Library)]
    public static partial nint tandem_cancel_new();

    [LibraryImport(Library)]
    public static partial void tandem_cancel_set(nint token);

    [LibraryImport(Library)]
    public static partial void tandem_cancel_free(nint token);

    [LibraryImport(Library)]
    public static partial nint tandem_runtime_info(NativeRuntimeInfo* output);

    [LibraryImport(Library)]
    public static partial uint tandem_log_set_level(uint level);

    [LibraryImport(Library)]
    public static partial nint tandem_stream_open(nint kernel, ulong* output);

    [LibraryImport(Library)]
    public static partial nint tandem_stream_update(ulong handle, byte* data, nuint length);

    [LibraryImport(Library)]
    public static partial nint tandem_stream_finalize(ulong handle, byte* output, nuint length);

    [LibraryImport(Library)]
    public static partial nint tandem_stream_free(ulong handle);
}
