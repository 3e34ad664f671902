using System.Runtime.InteropServices;
using Tandem.Contracts.V1;

namespace Tandem.Generator;

/// <summary>
/// Reads a kernel library's descriptors through its C ABI: the ABI version
/// first, then the library's own status (a library whose registration
/// failed says why), then tandem_kernels_describe.
/// </summary>
internal static unsafe class LibraryReader
{
    /// <summary>ABI major this generator reads.</summary>
    public const uint AbiMajor = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Buffer
    {
        public byte* Data;
        public ulong Length;
        public ulong Capacity;
    }

    public static KernelSet Describe(string path)
    {
        if (!File.Exists(path))
        {
            throw new GeneratorException($"kernel library '{path}' does not exist");
        }

        nint handle;
        try
        {
            handle = NativeLibrary.Load(Path.GetFullPath(path));
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw new GeneratorException($"'{path}' cannot be loaded as a shared library: {e.Message}");
        }

        // The library stays loaded: the process ends right after, and
        // unloading a Rust library that may have started threads is unsafe.
        {
            var version = ((delegate* unmanaged<uint>)Export(handle, path, "tandem_abi_version"))();
            if (version >> 16 != AbiMajor)
            {
                throw new GeneratorException($"kernel library '{path}' speaks ABI {version >> 16}.{version & 0xFFFF}; this generator reads ABI {AbiMajor}.x");
            }

            var message = (delegate* unmanaged<nint, byte*>)Export(handle, path, "tandem_error_message");
            var free = (delegate* unmanaged<nint, void>)Export(handle, path, "tandem_error_free");
            void ThrowIfError(nint error, string what)
            {
                if (error != 0)
                {
                    var text = Marshal.PtrToStringUTF8((nint)message(error));
                    free(error);
                    throw new GeneratorException($"kernel library '{path}' refused {what}: {text}");
                }
            }

            if (NativeLibrary.TryGetExport(handle, "tandem_library_status", out var status))
            {
                ThrowIfError(((delegate* unmanaged<nint>)status)(), "to load");
            }

            var describe = (delegate* unmanaged<Buffer*, nint>)Export(handle, path, "tandem_kernels_describe");
            var release = (delegate* unmanaged<Buffer*, void>)Export(handle, path, "tandem_buffer_free");
            Buffer buffer;
            ThrowIfError(describe(&buffer), "to describe its kernels");
            try
            {
                return KernelSet.Parser.ParseFrom(new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)));
            }
            finally
            {
                release(&buffer);
            }
        }
    }

    private static nint Export(nint handle, string path, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new GeneratorException($"'{path}' is not a Tandem kernel library: it exports no '{name}'");
}
