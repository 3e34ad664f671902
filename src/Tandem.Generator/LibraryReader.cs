using Tandem.Contracts.V1;
using Tandem.Shared;

namespace Tandem.Generator;

/// <summary>A kernel library's descriptors, read through its C ABI (<see cref="KernelLibraryReader"/>).</summary>
internal static class LibraryReader
{
    /// <summary>ABI major this generator reads.</summary>
    public const uint AbiMajor = KernelLibraryReader.AbiMajor;

    public static KernelSet Describe(string path) =>
        KernelSet.Parser.ParseFrom(KernelLibraryReader.Describe(path, message => new GeneratorException($"kernel library {message}")));
}
