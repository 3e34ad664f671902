using System.Runtime.InteropServices;
using Tandem.Kernels;
using Tandem.Perf.Cli;

namespace Tandem.Perf.Targets;

/// <summary>
/// Reads the contracts a kernel library publishes through its C ABI — the
/// ABI version, the library's status, then <c>tandem_kernels_describe</c>,
/// as tandem-generate does — so the tool can draw inputs for any kernel of
/// any library, and declare a user's library to the host
/// (<c>AddKernelContracts</c>) without generated code.
/// </summary>
internal static unsafe class LibraryContracts
{
    private const uint AbiMajor = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Buffer
    {
        public byte* Data;
        public ulong Length;
        public ulong Capacity;
    }

    /// <summary>The contracts of the library at <paramref name="path"/>.</summary>
    /// <exception cref="UsageException">The file is missing, not a shared library, not a Tandem kernel library, of another ABI major, or refuses to describe itself.</exception>
    public static KernelContractSet Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"--library: '{path}' does not exist");
        }

        nint handle;
        try
        {
            handle = NativeLibrary.Load(Path.GetFullPath(path));
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw new UsageException($"--library: '{path}' cannot be loaded as a shared library: {e.Message}");
        }

        // Never unloaded: the host loads the same file, and unloading a Rust
        // library that may have started threads is unsafe.
        var version = ((delegate* unmanaged<uint>)Export(handle, path, "tandem_abi_version"))();
        if (version >> 16 != AbiMajor)
        {
            throw new UsageException($"--library: '{path}' speaks ABI {version >> 16}.{version & 0xFFFF}; this tool reads ABI {AbiMajor}.x");
        }

        var message = (delegate* unmanaged<nint, byte*>)Export(handle, path, "tandem_error_message");
        var free = (delegate* unmanaged<nint, void>)Export(handle, path, "tandem_error_free");
        void ThrowIfError(nint error, string what)
        {
            if (error != 0)
            {
                var text = Marshal.PtrToStringUTF8((nint)message(error));
                free(error);
                throw new UsageException($"--library: '{path}' refused {what}: {text}");
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
            return KernelContractSet.Parse(new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)));
        }
        finally
        {
            release(&buffer);
        }
    }

    /// <summary>libtandem.so next to the tool (the build copies it there), whose contracts are the reference kernels'.</summary>
    public static string ReferenceLibraryPath() => Path.Combine(AppContext.BaseDirectory, "libtandem.so");

    private static nint Export(nint handle, string path, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address)
            ? address
            : throw new UsageException($"--library: '{path}' is not a Tandem kernel library: it exports no '{name}'");
}
