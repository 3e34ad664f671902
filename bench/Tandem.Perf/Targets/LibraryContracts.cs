using Tandem.Kernels;
using Tandem.Perf.Cli;
using Tandem.Shared;

namespace Tandem.Perf.Targets;

/// <summary>
/// The contracts a kernel library publishes through its C ABI
/// (<see cref="KernelLibraryReader"/>, as tandem-generate reads them), so the
/// tool can draw inputs for any kernel of any library, and declare a user's
/// library to the host (<c>AddKernelContracts</c>) without generated code.
/// </summary>
internal static class LibraryContracts
{
    /// <summary>The contracts of the library at <paramref name="path"/>.</summary>
    /// <exception cref="UsageException">The file is missing, not a shared library, not a Tandem kernel library, of another ABI major, or refuses to describe itself.</exception>
    public static KernelContractSet Read(string path) =>
        KernelContractSet.Parse(KernelLibraryReader.Describe(path, message => new UsageException($"--library: {message}")));

    /// <summary>libtandem.so next to the tool (the build copies it there), whose contracts are the reference kernels'.</summary>
    public static string ReferenceLibraryPath() => Path.Combine(AppContext.BaseDirectory, "libtandem.so");
}
