using System.Globalization;
using System.Runtime.CompilerServices;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;

namespace Tandem.Internal.Kernels;

/// <summary>
/// Checks a call against its descriptor before any backend sees it — the same
/// rules, in the same order and with the same messages, as the Rust
/// registry's validation: counts, dtypes, ranks, fixed and symbolic
/// dimensions, byte lengths, non-finite values and parameter ranges.
/// </summary>
internal static class ContractValidator
{
    private static readonly ConditionalWeakTable<KernelDescriptor, Compiled> CompiledContracts = new();

    public static void Validate(KernelCall call)
    {
        if (CompiledContracts.GetValue(call.Descriptor, static d => new Compiled(d)).Accepts(call))
        {
            return;
        }

        Explain(call);
        throw new TandemException(TandemStatusCode.Internal, "contract validation paths disagree about this call", call.Kernel);
    }

    /// <summary>Finds and names the first problem of a call the fast check refused.</summary>
    private static void Explain(KernelCall call)
    {
        var descriptor = call.Descriptor;
        var name = descriptor.Name;
        if (call.InputCount != descriptor.Inputs.Count)
        {
            throw TandemException.Invalid(name, $"kernel '{name}' takes {descriptor.Inputs.Count} input tensor(s), got {call.InputCount}");
        }

        Span<long> bound = stackalloc long[8];
        Span<bool> isBound = stackalloc bool[8];
        var symbols = new List<string>(4);
        for (var i = 0; i < descriptor.Inputs.Count; i++)
        {
            var spec = descriptor.Inputs[i];
            ref var tensor = ref call.Args.Inputs[i];
            if (tensor.DType != (uint)spec.Dtype)
            {
                throw TandemException.Invalid(name, $"tensor '{spec.Name}' must be {DTypeName((uint)spec.Dtype)}, got {DTypeName(tensor.DType)}");
            }

            if (tensor.Rank != spec.Shape.Count)
            {
                throw TandemException.Invalid(name, $"tensor '{spec.Name}' must have rank {spec.Shape.Count}, got rank {tensor.Rank}");
            }

            for (var axis = 0; axis < spec.Shape.Count; axis++)
            {
                var size = tensor.Shape[axis];
                if (size < 0)
                {
                    throw TandemException.Invalid(name, $"input {i} axis {axis} has negative size {size}");
                }

                var dim = spec.Shape[axis];
                if (dim.KindCase == Dim.KindOneofCase.Fixed && dim.Fixed != size)
                {
                    throw TandemException.Invalid(name, $"tensor '{spec.Name}' axis {axis} must have size {dim.Fixed}, got {size}");
                }

                if (dim.KindCase == Dim.KindOneofCase.Symbol)
                {
                    var index = symbols.IndexOf(dim.Symbol);
                    if (index < 0)
                    {
                        symbols.Add(dim.Symbol);
                        index = symbols.Count - 1;
                    }

                    if (isBound[index] && bound[index] != size)
                    {
                        throw TandemException.Invalid(name, $"tensor '{spec.Name}' axis {axis} ('{dim.Symbol}') has size {size}, but another tensor set '{dim.Symbol}' = {bound[index]}");
                    }

                    (bound[index], isBound[index]) = (size, true);
                }
            }

            CheckLength(name, spec.Name, ref tensor);

            if (spec.FiniteOnly && FirstNonFiniteRow(call, i) is var row and >= 0)
            {
                throw TandemException.Invalid(name, $"tensor '{spec.Name}' row {row} contains NaN or infinity");
            }
        }

        if (call.OutputCount != descriptor.Outputs.Count)
        {
            throw TandemException.Invalid(name, $"kernel '{name}' writes {descriptor.Outputs.Count} output tensor(s), got {call.OutputCount}");
        }

        for (var o = 0; o < descriptor.Outputs.Count; o++)
        {
            var spec = descriptor.Outputs[o];
            ref var tensor = ref call.Args.Outputs[o];
            if (tensor.DType != (uint)spec.Dtype || tensor.Rank != spec.Shape.Count)
            {
                throw TandemException.Invalid(name, $"output '{spec.Name}' must be {DTypeName((uint)spec.Dtype)} of rank {spec.Shape.Count}, got {DTypeName(tensor.DType)} of rank {tensor.Rank}");
            }

            CheckLength(name, spec.Name, ref tensor);
        }

        if (call.ParamCount != descriptor.Params.Count)
        {
            throw TandemException.Invalid(name, $"kernel '{name}' takes {descriptor.Params.Count} parameter(s), got {call.ParamCount}");
        }

        for (var i = 0; i < descriptor.Params.Count; i++)
        {
            CheckParam(name, descriptor.Params[i], call.Args.Params[i]);
        }
    }

    /// <summary>
    /// A descriptor reduced to integers (symbols become indices), so accepting
    /// a valid call compares numbers and allocates nothing; any refusal is
    /// explained by the descriptive checks.
    /// </summary>
    private sealed class Compiled
    {
        private readonly Spec[] _inputs;
        private readonly Spec[] _outputs;
        private readonly (double Min, double Max)[] _params;

        public Compiled(KernelDescriptor descriptor)
        {
            var symbols = new List<string>();
            _inputs = descriptor.Inputs.Select(spec => new Spec(spec, symbols)).ToArray();
            _outputs = descriptor.Outputs.Select(spec => new Spec(spec, symbols: null)).ToArray();
            _params = descriptor.Params.Select(p => (p.Min, p.Max)).ToArray();
            SymbolCount = symbols.Count;
        }

        private int SymbolCount { get; }

        public bool Accepts(KernelCall call)
        {
            if (call.InputCount != _inputs.Length || call.OutputCount != _outputs.Length || call.ParamCount != _params.Length || SymbolCount > 8)
            {
                return false;
            }

            Span<long> bound = stackalloc long[8];
            bound.Fill(-1);
            for (var i = 0; i < _inputs.Length; i++)
            {
                ref var tensor = ref call.Args.Inputs[i];
                if (!_inputs[i].Matches(ref tensor, bound) || (_inputs[i].FiniteOnly && FirstNonFiniteRow(call, i) >= 0))
                {
                    return false;
                }
            }

            for (var o = 0; o < _outputs.Length; o++)
            {
                if (!_outputs[o].Matches(ref call.Args.Outputs[o], bound: default))
                {
                    return false;
                }
            }

            for (var p = 0; p < _params.Length; p++)
            {
                var value = call.Args.Params[p];
                var numeric = value.Kind == Native.NativeParam.KindFloat ? value.FloatValue : value.IntValue;
                if (!(numeric >= _params[p].Min && numeric <= _params[p].Max))
                {
                    return false;
                }
            }

            return true;
        }

        private readonly struct Spec
        {
            private readonly uint _dtype;
            private readonly long[] _fixed;
            private readonly int[] _symbols;

            public Spec(TensorSpec spec, List<string>? symbols)
            {
                _dtype = (uint)spec.Dtype;
                FiniteOnly = spec.FiniteOnly;
                _fixed = new long[spec.Shape.Count];
                _symbols = new int[spec.Shape.Count];
                for (var axis = 0; axis < spec.Shape.Count; axis++)
                {
                    var dim = spec.Shape[axis];
                    _fixed[axis] = dim.KindCase == Dim.KindOneofCase.Fixed ? dim.Fixed : -1;
                    _symbols[axis] = -1;
                    if (symbols is not null && dim.KindCase == Dim.KindOneofCase.Symbol)
                    {
                        var index = symbols.IndexOf(dim.Symbol);
                        if (index < 0)
                        {
                            symbols.Add(dim.Symbol);
                            index = symbols.Count - 1;
                        }

                        _symbols[axis] = index;
                    }
                }
            }

            public bool FiniteOnly { get; }

            public bool Matches(ref Native.NativeTensor tensor, Span<long> bound)
            {
                if (tensor.DType != _dtype || tensor.Rank != _fixed.Length)
                {
                    return false;
                }

                var elements = 1L;
                for (var axis = 0; axis < _fixed.Length; axis++)
                {
                    var size = tensor.Shape[axis];
                    if (size < 0 || (_fixed[axis] >= 0 && _fixed[axis] != size))
                    {
                        return false;
                    }

                    if (_symbols[axis] >= 0)
                    {
                        ref var slot = ref bound[_symbols[axis]];
                        if (slot >= 0 && slot != size)
                        {
                            return false;
                        }

                        slot = size;
                    }

                    if (size != 0 && elements > long.MaxValue / size)
                    {
                        return false;
                    }

                    elements *= size;
                }

                var elementSize = ElementSize(tensor.DType);
                return elements <= long.MaxValue / elementSize && (long)tensor.ByteLength == elements * elementSize;
            }
        }
    }

    /// <summary>Byte length must equal the shape's element count times the element size (checked arithmetic, no negative sizes).</summary>
    private static void CheckLength(string kernel, string tensorName, ref Native.NativeTensor tensor)
    {
        long needed;
        try
        {
            var elements = 1L;
            for (var axis = 0; axis < tensor.Rank; axis++)
            {
                if (tensor.Shape[axis] < 0)
                {
                    throw TandemException.Invalid(kernel, $"tensor '{tensorName}' axis {axis} has negative size {tensor.Shape[axis]}");
                }

                elements = checked(elements * tensor.Shape[axis]);
            }

            needed = checked(elements * ElementSize(tensor.DType));
        }
        catch (OverflowException)
        {
            throw TandemException.Invalid(kernel, $"tensor '{tensorName}' shape overflows");
        }

        if ((long)tensor.ByteLength != needed)
        {
            throw TandemException.Invalid(kernel, $"tensor '{tensorName}' has {tensor.ByteLength} bytes but its shape of {DTypeName(tensor.DType)} needs {needed}");
        }
    }

    private static void CheckParam(string kernel, ParamSpec spec, Native.NativeParam value)
    {
        var numeric = value.Kind == Native.NativeParam.KindFloat ? value.FloatValue : value.IntValue;
        if (numeric >= spec.Min && numeric <= spec.Max)
        {
            return;
        }

        var shown = numeric.ToString(CultureInfo.InvariantCulture);
        throw TandemException.Invalid(kernel, spec.Type == ParamType.Enum
            ? $"parameter '{spec.Name}' must be one of {string.Join(", ", spec.Choices)} (0..{spec.Choices.Count}), got {shown}"
            : $"parameter '{spec.Name}' must be in [{spec.Min.ToString(CultureInfo.InvariantCulture)}, {spec.Max.ToString(CultureInfo.InvariantCulture)}], got {shown}");
    }

    private static int FirstNonFiniteRow(KernelCall call, int input)
    {
        ref var tensor = ref call.Args.Inputs[input];
        var rowLength = 1L;
        for (var axis = 1; axis < tensor.Rank; axis++)
        {
            rowLength *= tensor.Shape[axis];
        }

        var row = (int)Math.Max(rowLength, 1);
        return tensor.DType switch
        {
            Native.NativeDType.F32 => Validation.FirstNonFiniteRow(call.InputSpan<float>(input), row),
            Native.NativeDType.F64 => FirstNonFinite(call.InputSpan<double>(input), row),
            _ => -1,
        };
    }

    private static int FirstNonFinite(ReadOnlySpan<double> values, int rowLength)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (!double.IsFinite(values[i]))
            {
                return i / rowLength;
            }
        }

        return -1;
    }

    private static long ElementSize(uint dtype) => dtype switch
    {
        1 => 1,
        2 or 4 => 4,
        _ => 8,
    };

    private static string DTypeName(uint dtype) => dtype switch
    {
        1 => "u8",
        2 => "i32",
        3 => "i64",
        4 => "f32",
        5 => "f64",
        _ => $"dtype {dtype}",
    };
}
