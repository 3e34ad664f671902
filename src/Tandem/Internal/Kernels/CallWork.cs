using System.Runtime.CompilerServices;
using Tandem.Contracts.V1;

namespace Tandem.Internal.Kernels;

/// <summary>
/// The work bound a descriptor declares (<c>WorkBound</c>: the product of
/// symbol sizes and integer parameters, at most <c>max_per_call</c>), checked
/// after the contract with the Rust SDK's rule and message
/// (tandem_sdk::validate), so a call over it is refused with
/// RESOURCE_EXHAUSTED before it is cached, queued or batched, whichever
/// backend it was meant for.
/// </summary>
internal static class CallWork
{
    /// <summary>The name messages give the bound, as the Rust SDK spells it.</summary>
    public const string Limit = TandemStatusCodes.WorkLimit;

    private static readonly ConditionalWeakTable<KernelDescriptor, Compiled> CompiledBounds = new();

    /// <summary>
    /// The units of work <paramref name="call"/> asks for (saturating at
    /// <see cref="ulong.MaxValue"/>; 0 when its kernel declares no bound);
    /// RESOURCE_EXHAUSTED naming every factor and the limit when over the bound.
    /// The call must have passed <see cref="ContractValidator.Validate"/>.
    /// </summary>
    public static ulong Check(KernelCall call)
    {
        var bound = Of(call.Descriptor);
        if (bound is null)
        {
            return 0;
        }

        var units = bound.Units(call);
        if (units > bound.Max)
        {
            throw new TandemException(TandemStatusCode.ResourceExhausted, bound.Refusal(call, units), call.Kernel);
        }

        return units;
    }

    /// <summary>
    /// Most summed units of work one merged batch of <paramref name="descriptor"/>'s
    /// calls may hold: its bound when the work grows with the batch axis (a
    /// factor is axis 0's symbol), else unbounded — each call passed alone, and
    /// merging adds only rows.
    /// </summary>
    public static ulong BatchLimit(KernelDescriptor descriptor) =>
        Of(descriptor) is { GrowsWithBatch: true } bound ? bound.Max : ulong.MaxValue;

    private static Compiled? Of(KernelDescriptor descriptor) =>
        descriptor.Work is null ? null : CompiledBounds.GetValue(descriptor, static d => new Compiled(d));

    /// <summary>Multiplies, saturating at <see cref="ulong.MaxValue"/> instead of wrapping.</summary>
    internal static ulong SaturatingMultiply(ulong a, ulong b) =>
        Math.BigMul(a, b, out var low) == 0 ? low : ulong.MaxValue;

    /// <summary>A factor as where to read it: an input's or output's axis, or a parameter.</summary>
    private readonly record struct Factor(string Name, bool IsParam, bool IsOutput, int Index, int Axis);

    private sealed class Compiled
    {
        private readonly Factor[] _factors;

        public Compiled(KernelDescriptor descriptor)
        {
            var work = descriptor.Work;
            Max = work.MaxPerCall > 0 ? (ulong)work.MaxPerCall : 0;
            _factors = new Factor[work.Factors.Count];
            var batchSymbol = descriptor.Inputs.Count > 0 && descriptor.Inputs[0].Shape.Count > 0 ? descriptor.Inputs[0].Shape[0].Symbol : null;
            for (var i = 0; i < _factors.Length; i++)
            {
                var factor = work.Factors[i];
                _factors[i] = factor.KindCase == WorkFactor.KindOneofCase.Param
                    ? new Factor(factor.Param, IsParam: true, IsOutput: false, IndexOfParam(descriptor, factor.Param), 0)
                    : Locate(descriptor, factor.Symbol);
                GrowsWithBatch |= descriptor.Flags?.Batchable == true && !_factors[i].IsParam && factor.Symbol == batchSymbol;
            }
        }

        public ulong Max { get; }

        public bool GrowsWithBatch { get; }

        public ulong Units(KernelCall call)
        {
            var product = 1UL;
            foreach (var factor in _factors)
            {
                product = SaturatingMultiply(product, Value(call, factor));
            }

            return product;
        }

        public string Refusal(KernelCall call, ulong units)
        {
            var factors = string.Join(" × ", _factors.Select(f => $"{f.Name} {Value(call, f)}"));
            var asked = units == ulong.MaxValue ? $"more than {ulong.MaxValue}" : units.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return $"kernel '{call.Kernel}' asks for {asked} units of work ({factors}); at most {Max} per call (limit {Limit}); split the call";
        }

        /// <summary>A factor's value; one naming nothing (the SDK refuses such a descriptor) is unbounded, as in Rust.</summary>
        private static ulong Value(KernelCall call, Factor factor)
        {
            if (factor.Index < 0)
            {
                return ulong.MaxValue;
            }

            if (factor.IsParam)
            {
                return factor.Index < call.ParamCount ? (ulong)Math.Max(0L, call.IntParam(factor.Index)) : ulong.MaxValue;
            }

            var size = factor.IsOutput ? call.OutputDim(factor.Index, factor.Axis) : call.InputDim(factor.Index, factor.Axis);
            return (ulong)Math.Max(0L, size);
        }

        private static int IndexOfParam(KernelDescriptor descriptor, string name)
        {
            for (var p = 0; p < descriptor.Params.Count; p++)
            {
                if (descriptor.Params[p].Name == name)
                {
                    return p;
                }
            }

            return -1;
        }

        /// <summary>The first input (else output) axis that binds <paramref name="symbol"/>, the way the SDK binds it.</summary>
        private static Factor Locate(KernelDescriptor descriptor, string symbol)
        {
            for (var pass = 0; pass < 2; pass++)
            {
                var specs = pass == 0 ? descriptor.Inputs : descriptor.Outputs;
                for (var t = 0; t < specs.Count; t++)
                {
                    for (var axis = 0; axis < specs[t].Shape.Count; axis++)
                    {
                        if (specs[t].Shape[axis].KindCase == Dim.KindOneofCase.Symbol && specs[t].Shape[axis].Symbol == symbol)
                        {
                            return new Factor(symbol, IsParam: false, IsOutput: pass == 1, t, axis);
                        }
                    }
                }
            }

            return new Factor(symbol, IsParam: false, IsOutput: false, -1, 0);
        }
    }
}
