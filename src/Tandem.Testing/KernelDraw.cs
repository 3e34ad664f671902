using Tandem.Kernels;

namespace Tandem.Testing;

/// <summary>
/// What a drawing hook of <see cref="KernelContractTests"/> sees: the
/// contract, the case's seeded random source, the size bounds, and the
/// symbol sizes drawn so far (all of them by the time tensors are drawn, so
/// an index input can stay below the state's "n").
/// </summary>
public sealed class KernelDraw
{
    internal KernelDraw(KernelContract contract, int seed, KernelTestSizes sizes, IReadOnlyDictionary<string, long> symbols)
    {
        Contract = contract;
        Seed = seed;
        Random = new Random(seed);
        Sizes = sizes;
        Symbols = symbols;
        BatchSymbol = KernelCase.BatchSymbolOf(contract);
    }

    /// <summary>The kernel's contract.</summary>
    public KernelContract Contract { get; }

    /// <summary>The seed of the case being drawn.</summary>
    public int Seed { get; }

    /// <summary>The case's random source (seeded with <see cref="Seed"/>): draw everything from it, so a seed reproduces a case.</summary>
    public Random Random { get; }

    /// <summary>The bounds the case stays within.</summary>
    public KernelTestSizes Sizes { get; }

    /// <summary>The symbol of the batch axis (axis 0 of the first input of a batchable kernel), or null.</summary>
    public string? BatchSymbol { get; }

    /// <summary>Symbol sizes drawn so far, by symbol.</summary>
    public IReadOnlyDictionary<string, long> Symbols { get; }
}

/// <summary>Bounds of what <see cref="KernelContractTests"/> draws, small so the tests stay fast.</summary>
public sealed class KernelTestSizes
{
    /// <summary>Most rows of the batch axis.</summary>
    /// <value>The default is 64.</value>
    public int MaxRows { get; init; } = 64;

    /// <summary>Largest size of any other symbolic dimension (and of an output symbol, within its own limit).</summary>
    /// <value>The default is 16.</value>
    public int MaxDimension { get; init; } = 16;

    /// <summary>Most bytes a stream test appends.</summary>
    /// <value>The default is 4096.</value>
    public int MaxStreamBytes { get; init; } = 4096;

    /// <summary>Widest range an integer parameter is drawn from, starting at its minimum (a "paths" parameter stays cheap).</summary>
    /// <value>The default is 64.</value>
    public int MaxIntParamSpan { get; init; } = 64;
}
