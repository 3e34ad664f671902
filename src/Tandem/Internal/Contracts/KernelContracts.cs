using Tandem.Contracts.V1;

namespace Tandem.Internal.Contracts;

/// <summary>
/// The descriptors this build of the C# facades was written against. A
/// backend whose descriptor differs is refused for that kernel.
/// </summary>
internal static class KernelContracts
{
    /// <summary>ABI major version this build speaks (high 16 bits of the version).</summary>
    public const uint AbiMajor = 1;

    public const string SimilarityTopK = "similarity.topk";
    public const string MonteCarloEuropean = "montecarlo.european";
    public const string HashBlake3 = "hash.blake3";
    public const string CollectionKind = "vector_collection";
    public const string DiagnosticsNoop = "diagnostics.noop";
    public const string DiagnosticsPanic = "diagnostics.panic";

    public static KernelDescriptor TopK { get; } = new()
    {
        Name = SimilarityTopK,
        Version = 1,
        Inputs = { Tensor("queries", DType.F32, finiteOnly: true, "batch", "dim") },
        Outputs =
        {
            Tensor("ids", DType.I64, finiteOnly: false, "batch", "k"),
            Tensor("scores", DType.F32, finiteOnly: false, "batch", "k"),
        },
        Params =
        {
            IntParam("k", 1, 4096, 10),
            EnumParam("metric", 0, "dot", "cosine", "l2"),
        },
        StateKind = CollectionKind,
        Flags = new KernelFlags { Idempotent = true, Batchable = true, Deterministic = true },
    };

    public static KernelDescriptor European { get; } = new()
    {
        Name = MonteCarloEuropean,
        Version = 1,
        Inputs =
        {
            Tensor("options", DType.F64, finiteOnly: false, new Dim { Symbol = "batch" }, new Dim { Fixed = 6 }),
            Tensor("row_keys", DType.I64, finiteOnly: false, "batch"),
        },
        Outputs =
        {
            Tensor("price", DType.F64, finiteOnly: false, "batch"),
            Tensor("stderr", DType.F64, finiteOnly: false, "batch"),
        },
        Params =
        {
            IntParam("paths", 1, 1_000_000_000, 100_000),
            IntParam("seed", long.MinValue, long.MaxValue, 0),
            new ParamSpec { Name = "antithetic", Type = ParamType.Bool, Min = 0, Max = 1, DefaultValue = 0 },
        },
        Flags = new KernelFlags { Idempotent = true, Batchable = true, Deterministic = true },
    };

    public static KernelDescriptor Blake3 { get; } = new()
    {
        Name = HashBlake3,
        Version = 1,
        Inputs = { Tensor("data", DType.U8, finiteOnly: false, "len") },
        Outputs = { Tensor("digest", DType.U8, finiteOnly: false, "output_len") },
        Flags = new KernelFlags { Idempotent = true, Deterministic = true, Streaming = true },
    };

    /// <summary>Longest BLAKE3 digest (extended output) a call may ask for.</summary>
    public const int MaxHashOutput = 1 << 20;

    public static KernelDescriptor Noop { get; } = new()
    {
        Name = DiagnosticsNoop,
        Version = 1,
        Inputs = { Tensor("a", DType.U8, finiteOnly: false, "a_len"), Tensor("b", DType.U8, finiteOnly: false, "b_len") },
        Flags = new KernelFlags { Idempotent = true, Deterministic = true },
    };

    /// <summary>Largest k a top-k call may ask for.</summary>
    public static int MaxK { get; } = (int)TopK.Params[0].Max;

    /// <summary>Every kernel a facade of this build calls.</summary>
    public static IReadOnlyList<KernelDescriptor> All { get; } = [TopK, European, Blake3, Noop];

    private static TensorSpec Tensor(string name, DType dtype, bool finiteOnly, params string[] symbols)
    {
        var dims = new Dim[symbols.Length];
        for (var i = 0; i < symbols.Length; i++)
        {
            dims[i] = new Dim { Symbol = symbols[i] };
        }

        return Tensor(name, dtype, finiteOnly, dims);
    }

    private static TensorSpec Tensor(string name, DType dtype, bool finiteOnly, params Dim[] dims)
    {
        var spec = new TensorSpec { Name = name, Dtype = dtype, FiniteOnly = finiteOnly };
        spec.Shape.AddRange(dims);
        return spec;
    }

    private static ParamSpec IntParam(string name, long min, long max, long defaultValue) =>
        new() { Name = name, Type = ParamType.Int, Min = min, Max = max, DefaultValue = defaultValue };

    private static ParamSpec EnumParam(string name, long defaultIndex, params string[] choices)
    {
        var spec = new ParamSpec { Name = name, Type = ParamType.Enum, Min = 0, Max = choices.Length - 1, DefaultValue = defaultIndex };
        spec.Choices.AddRange(choices);
        return spec;
    }

    /// <summary>Describes how <paramref name="actual"/> differs from <paramref name="expected"/>, or null when equal.</summary>
    public static string? Difference(KernelDescriptor expected, KernelDescriptor? actual)
    {
        if (actual is null)
        {
            return $"the library has no kernel '{expected.Name}'";
        }

        if (expected.Equals(actual))
        {
            return null;
        }

        if (expected.Version != actual.Version)
        {
            return $"'{expected.Name}' is version {actual.Version} in the library but this build expects version {expected.Version}";
        }

        return $"'{expected.Name}' v{expected.Version} differs: the library declares {actual} but this build expects {expected}";
    }
}
