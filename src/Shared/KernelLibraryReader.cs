using System.Runtime.InteropServices;

namespace Tandem.Shared;

/// <summary>
/// Reads the encoded <c>tandem.v1.KernelSet</c> a kernel library publishes
/// through its C ABI: the ABI version first, then the library's own status
/// (a library whose registration failed says why), then
/// <c>tandem_kernels_describe</c>. One source, linked into the tools that
/// read a library without hosting it (tandem-generate, tandem-perf); each
/// phrases its errors through <c>error</c>. The library stays loaded:
/// unloading a Rust library that may have started threads is unsafe.
/// </summary>
internal static unsafe class KernelLibraryReader
{
    /// <summary>ABI major these tools read.</summary>
    public const uint AbiMajor = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Buffer
    {
        public byte* Data;
        public ulong Length;
        public ulong Capacity;
    }

    /// <summary>
    /// The descriptor bytes of the library at <paramref name="path"/>, or
    /// the exception <paramref name="error"/> makes of what is wrong: the
    /// file is missing, not a shared library, not a Tandem kernel library,
    /// of another ABI major, or refuses to load or describe itself.
    /// </summary>
    public static byte[] Describe(string path, Func<string, Exception> error)
    {
        if (!File.Exists(path))
        {
            throw error($"'{path}' does not exist");
        }

        nint handle;
        try
        {
            handle = NativeLibrary.Load(Path.GetFullPath(path));
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw error($"'{path}' cannot be loaded as a shared library: {e.Message}");
        }

        var version = ((delegate* unmanaged<uint>)Export(handle, path, "tandem_abi_version", error))();
        if (version >> 16 != AbiMajor)
        {
            throw error($"'{path}' speaks ABI {version >> 16}.{version & 0xFFFF}; this tool reads ABI {AbiMajor}.x");
        }

        var message = (delegate* unmanaged<nint, byte*>)Export(handle, path, "tandem_error_message", error);
        var free = (delegate* unmanaged<nint, void>)Export(handle, path, "tandem_error_free", error);
        void ThrowIfError(nint failure, string what)
        {
            if (failure != 0)
            {
                var text = Marshal.PtrToStringUTF8((nint)message(failure));
                free(failure);
                throw error($"'{path}' refused {what}: {text}");
            }
        }

        if (NativeLibrary.TryGetExport(handle, "tandem_library_status", out var status))
        {
            ThrowIfError(((delegate* unmanaged<nint>)status)(), "to load");
        }

        var describe = (delegate* unmanaged<Buffer*, nint>)Export(handle, path, "tandem_kernels_describe", error);
        var release = (delegate* unmanaged<Buffer*, void>)Export(handle, path, "tandem_buffer_free", error);
        Buffer buffer;
        ThrowIfError(describe(&buffer), "to describe its kernels");
        try
        {
            return new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)).ToArray();
        }
        finally
        {
            release(&buffer);
        }
    }

    private static nint Export(nint handle, string path, string name, Func<string, Exception> error) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw error($"'{path}' is not a Tandem kernel library: it exports no '{name}'");
}
