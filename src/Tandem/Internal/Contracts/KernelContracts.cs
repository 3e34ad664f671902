using System.Runtime.CompilerServices;
using Tandem.Contracts.V1;

namespace Tandem.Internal.Contracts;

/// <summary>
/// The contracts this build's facades call, by the names the rest of the
/// core uses. Every descriptor comes from <see cref="ReferenceKernels"/>,
/// generated from libtandem.so (`make generate`); nothing here restates one.
/// A backend whose descriptor hash differs is refused for that kernel.
/// </summary>
internal static class KernelContracts
{
    private static readonly ConditionalWeakTable<KernelDescriptor, string> Hashes = new();

    /// <summary>ABI major version this build speaks (high 16 bits of the version).</summary>
    public const uint AbiMajor = ReferenceKernels.AbiMajor;

    public const string SimilarityTopK = ReferenceKernels.SimilarityTopk.Name;
    public const string MonteCarloEuropean = ReferenceKernels.MontecarloEuropean.Name;
    public const string HashBlake3 = ReferenceKernels.HashBlake3.Name;
    public const string CollectionKind = ReferenceKernels.StateKinds.VectorCollection.Name;
    public const string DiagnosticsNoop = ReferenceKernels.DiagnosticsNoop.Name;

    /// <summary>The fault kernel libtandem.so adds with TANDEM_TEST_KERNELS=1 (tests only, so not generated).</summary>
    public const string DiagnosticsPanic = "diagnostics.panic";

    public static KernelDescriptor TopK => ReferenceKernels.SimilarityTopk.Descriptor;

    public static KernelDescriptor European => ReferenceKernels.MontecarloEuropean.Descriptor;

    public static KernelDescriptor Blake3 => ReferenceKernels.HashBlake3.Descriptor;

    public static KernelDescriptor Noop => ReferenceKernels.DiagnosticsNoop.Descriptor;

    /// <summary>Longest BLAKE3 digest (extended output) a call may ask for.</summary>
    public const int MaxHashOutput = (int)ReferenceKernels.HashBlake3.Limits.MaxOutputLen;

    /// <summary>Largest k a top-k call may ask for.</summary>
    public const int MaxK = (int)ReferenceKernels.SimilarityTopk.Limits.MaxK;

    /// <summary>Every kernel a facade of this build calls.</summary>
    public static IReadOnlyList<KernelDescriptor> All { get; } = [TopK, European, Blake3, Noop];

    /// <summary>The hash of the contract <paramref name="expected"/> describes, computed here (so a changed copy has its own).</summary>
    public static string HashOf(KernelDescriptor expected) =>
        Hashes.GetValue(expected, static d => DescriptorHash.Of(d, StateKindOf(d)));

    /// <summary>Records the hash of a declared contract, computed with its own library's state kind.</summary>
    public static void RememberHash(KernelDescriptor descriptor, string hash) => Hashes.AddOrUpdate(descriptor, hash);

    /// <summary>The hash of <paramref name="descriptor"/>, with its state kind from <paramref name="set"/>.</summary>
    public static string HashOf(KernelDescriptor descriptor, KernelSet set) => DescriptorHash.Of(descriptor, StateKindOf(descriptor, set));

    private static StateKindDescriptor? StateKindOf(KernelDescriptor descriptor, KernelSet? set = null)
    {
        foreach (var kind in (set ?? ReferenceKernels.Set).StateKinds)
        {
            if (kind.Name == descriptor.StateKind)
            {
                return kind;
            }
        }

        return null;
    }

    /// <summary>Describes how <paramref name="actual"/> differs from <paramref name="expected"/>, naming both hashes, or null when they agree.</summary>
    public static string? Difference(KernelDescriptor expected, KernelDescriptor? actual)
    {
        if (actual is null)
        {
            return $"the library has no kernel '{expected.Name}'";
        }

        var want = HashOf(expected);
        var have = actual.Hash.Length > 0 ? actual.Hash : DescriptorHash.Of(actual, StateKindOf(actual));
        if (want == have)
        {
            return null;
        }

        var library = actual.Library.Length > 0 ? $"library '{actual.Library}'" : "the library";
        if (expected.Version != actual.Version)
        {
            return $"'{expected.Name}' is version {actual.Version} in {library} but this build expects version {expected.Version} (descriptor hash {have}, expected {want})";
        }

        return $"'{expected.Name}' v{expected.Version} differs: {library} reports descriptor hash {have} but this build was generated from {want}; regenerate the C# contracts from the library";
    }
}
