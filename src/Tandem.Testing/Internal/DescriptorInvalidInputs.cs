using System.Globalization;
using Tandem.Kernels;

namespace Tandem.Testing.Internal;

/// <summary>
/// Every bad input a descriptor implies, each a small change of a valid case:
/// per input tensor (dtype, rank, fixed sizes, symbols that disagree, a
/// negative size, byte length, NaN and infinities where only finite values
/// are allowed), per parameter (out of range, not a choice, not whole), the request (missing
/// or extra inputs, unknown parameters and output symbols, output symbols
/// above their limit, a missing state), the state's creation tensors and a
/// stream's output length.
/// </summary>
internal static class DescriptorInvalidInputs
{
    private static readonly (string Name, double Value)[] NonFinite = [("NaN", double.NaN), ("+infinity", double.PositiveInfinity), ("-infinity", double.NegativeInfinity)];

    public static IEnumerable<InvalidInput> For(KernelCase valid)
    {
        var contract = valid.Contract;
        return Tensors(valid, contract.Inputs, valid.Inputs, "input")
            .Select(bad => InvalidInput.Call(bad.Description, state => valid.ToRequest(state, bad.Tensors, null, null)))
            .Concat(Requests(valid))
            .Concat(Params(valid))
            .Concat(OutputSymbols(valid))
            .Concat(States(valid))
            .Concat(Streams(valid));
    }

    /// <summary>Wrong tensors of one list (a call's inputs or a state's creation tensors).</summary>
    private static IEnumerable<(string Description, TensorData[] Tensors)> Tensors(KernelCase valid, IReadOnlyList<TensorContract> specs, IReadOnlyList<TensorData> tensors, string what)
    {
        TensorData[] Replace(int index, TensorData tensor)
        {
            var copy = tensors.ToArray();
            copy[index] = tensor;
            return copy;
        }

        for (var i = 0; i < specs.Count; i++)
        {
            var spec = specs[i];
            var tensor = tensors[i];
            var elements = tensor.Data.Length;
            var other = spec.DType == TensorDType.F64 ? TensorDType.F32 : TensorDType.F64;
            yield return ($"{what} {spec} given as {TensorData.Lower(other)}", Replace(i, new TensorData(spec.Name, other, tensor.Shape, TensorData.NewArray(other, elements))));
            yield return ($"{what} {spec} given with rank {spec.Shape.Count + 1}", Replace(i, tensor.With([.. tensor.Shape, 1], tensor.Data)));
            if (spec.Shape.Count > 0)
            {
                var shorter = tensor.Shape.Take(spec.Shape.Count - 1).ToArray();
                yield return ($"{what} {spec} given with rank {spec.Shape.Count - 1}", Replace(i, tensor.With(shorter, TensorData.NewArray(spec.DType, TensorData.ElementCount(shorter)))));
            }

            for (var axis = 0; axis < spec.Shape.Count; axis++)
            {
                if (!spec.Shape[axis].IsSymbolic)
                {
                    yield return ($"{what} {spec} with axis {axis} of size {spec.Shape[axis].Size + 1} instead of the fixed {spec.Shape[axis].Size}", Replace(i, Resized(tensor, axis, spec.Shape[axis].Size + 1)));
                }
                else if (FirstUse(specs, spec.Shape[axis].Symbol!) is var (firstTensor, firstAxis) && (firstTensor, firstAxis) != (i, axis))
                {
                    // The symbol was bound by an earlier axis: this one now disagrees.
                    var size = tensor.Shape[axis] + 1;
                    yield return ($"{what} {spec} with axis {axis} ('{spec.Shape[axis].Symbol}') of size {size} while {specs[firstTensor].Name} axis {firstAxis} has {tensors[firstTensor].Shape[firstAxis]}", Replace(i, Resized(tensor, axis, size)));
                }
            }

            if (spec.Shape.Count > 0)
            {
                var negative = tensor.Shape.ToArray();
                negative[0] = -1;
                yield return ($"{what} {spec} with axis 0 of size -1", Replace(i, tensor.With(negative, tensor.Data)));
            }

            var longer = TensorData.NewArray(spec.DType, elements + 1);
            Array.Copy(tensor.Data, longer, elements);
            yield return ($"{what} {spec} with one element more than its shape [{string.Join(", ", tensor.Shape)}] holds", Replace(i, tensor.With(tensor.Shape, longer)));

            if (spec.FiniteOnly && elements > 0 && spec.DType is TensorDType.F32 or TensorDType.F64)
            {
                foreach (var (name, value) in NonFinite)
                {
                    var at = valid.Seed % elements;
                    var data = (Array)tensor.Data.Clone();
                    data.SetValue(spec.DType == TensorDType.F32 ? (float)value : (object)value, at);
                    yield return ($"{what} {spec} (finite only) holding {name} at element {at}", Replace(i, tensor.With(tensor.Shape, data)));
                }
            }
        }
    }

    private static IEnumerable<InvalidInput> Requests(KernelCase valid)
    {
        var contract = valid.Contract;
        if (valid.Inputs.Count > 0)
        {
            yield return InvalidInput.Call($"the last input ({contract.Inputs[^1]}) missing", state => valid.ToRequest(state, valid.Inputs.Take(valid.Inputs.Count - 1).ToArray(), null, null));
            yield return InvalidInput.Call($"an extra input after {contract.Inputs[^1]}", state => valid.ToRequest(state, [.. valid.Inputs, valid.Inputs[^1]], null, null));
        }

        yield return InvalidInput.Call("an unknown parameter 'tandem_testing_unknown'", state => valid.ToRequest(state, null, null, r => r.Param("tandem_testing_unknown", 1L)));
        yield return InvalidInput.Call($"parameter index {contract.Params.Count}, past the last", state => valid.ToRequest(state, null, null, r => r.Param(contract.Params.Count, 1L)));
        if (contract.StateKind is { } kind)
        {
            yield return InvalidInput.Call($"no state (the kernel reads a '{kind.Name}' state)", _ => valid.ToRequest(null));
        }
    }

    private static IEnumerable<InvalidInput> Params(KernelCase valid)
    {
        foreach (var param in valid.Contract.Params)
        {
            var name = param.Name;
            switch (param.Kind)
            {
                case ParamKind.Float:
                    if (double.IsFinite(param.Min) && param.Min > double.MinValue)
                    {
                        var below = Math.BitDecrement(param.Min);
                        yield return Param(valid, $"parameter '{name}' = {Show(below)}, below its min {Show(param.Min)}", r => r.Param(name, below));
                    }

                    if (double.IsFinite(param.Max) && param.Max < double.MaxValue)
                    {
                        var above = Math.BitIncrement(param.Max);
                        yield return Param(valid, $"parameter '{name}' = {Show(above)}, above its max {Show(param.Max)}", r => r.Param(name, above));
                    }

                    yield return Param(valid, $"parameter '{name}' = NaN", r => r.Param(name, double.NaN));
                    break;
                case ParamKind.Int:
                    // Whole doubles up to 2^53 are exact; beyond, min−1 and max+1 are not representable.
                    if (param.Min > -(1L << 53))
                    {
                        var below = (long)param.Min - 1;
                        yield return Param(valid, $"parameter '{name}' = {below}, below its min {Show(param.Min)}", r => r.Param(name, below));
                    }

                    if (param.Max < 1L << 53)
                    {
                        var above = (long)param.Max + 1;
                        yield return Param(valid, $"parameter '{name}' = {above}, above its max {Show(param.Max)}", r => r.Param(name, above));
                    }

                    yield return Param(valid, $"integer parameter '{name}' = {Show(param.Min + 0.5)}", r => r.Param(name, param.Min + 0.5));
                    break;
                case ParamKind.Bool:
                    yield return Param(valid, $"boolean parameter '{name}' = 2", r => r.Param(name, 2L));
                    break;
                case ParamKind.Enum:
                    yield return Param(valid, $"parameter '{name}' = 'tandem_testing_no_such_choice', not one of {string.Join(", ", param.Choices)}", r => r.Param(name, "tandem_testing_no_such_choice"));
                    yield return Param(valid, $"parameter '{name}' = choice index {param.Choices.Count}, past the last", r => r.Param(name, (long)param.Choices.Count));
                    yield return Param(valid, $"parameter '{name}' = choice index -1", r => r.Param(name, -1L));
                    break;
            }

            if (param.Kind != ParamKind.Enum)
            {
                yield return Param(valid, $"{param.Kind.ToString().ToLowerInvariant()} parameter '{name}' given a choice name", r => r.Param(name, "tandem_testing_choice"));
            }
        }
    }

    private static IEnumerable<InvalidInput> OutputSymbols(KernelCase valid)
    {
        var contract = valid.Contract;
        foreach (var symbol in contract.OutputSymbols)
        {
            var others = valid.OutputSymbols.Where(s => s.Key != symbol.Name).ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal);
            yield return InvalidInput.Call($"output symbol '{symbol.Name}' not given", state => valid.ToRequest(state, null, others, null));
            yield return InvalidInput.Call($"output symbol '{symbol.Name}' = -1", state => valid.ToRequest(state, null, null, r => r.OutputSymbol(symbol.Name, -1)));
            if (symbol.Value > 0 && symbol.Value < long.MaxValue)
            {
                yield return InvalidInput.Call($"output symbol '{symbol.Name}' = {symbol.Value + 1}, above its limit {symbol.Value}", state => valid.ToRequest(state, null, null, r => r.OutputSymbol(symbol.Name, symbol.Value + 1)));
            }
        }

        yield return InvalidInput.Call("an unknown output symbol 'tandem_testing_unknown'", state => valid.ToRequest(state, null, null, r => r.OutputSymbol("tandem_testing_unknown", 1)));
    }

    private static IEnumerable<InvalidInput> States(KernelCase valid)
    {
        if (valid.Contract.StateKind is not { } kind || valid.StateTensors is not { } tensors)
        {
            yield break;
        }

        foreach (var (description, bad) in Tensors(valid, kind.Tensors, tensors, $"state '{kind.Name}' tensor"))
        {
            yield return new InvalidInput(description, (invoker, _) => CreateAndDispose(invoker, kind.Name, [.. bad.Select(t => t.ToKernelTensor())]));
        }

        yield return new InvalidInput($"state '{kind.Name}' created with one tensor too many", (invoker, _) => CreateAndDispose(invoker, kind.Name, [.. tensors.Select(t => t.ToKernelTensor()), tensors[^1].ToKernelTensor()]));
        foreach (var spec in kind.Tensors.Where(t => !kind.OptionalTensors.Contains(t.Name)))
        {
            yield return new InvalidInput($"state '{kind.Name}' created without its required tensor '{spec.Name}'", (invoker, _) => CreateAndDispose(invoker, kind.Name, [.. tensors.Select(t => t.Name == spec.Name ? KernelTensor.Absent : t.ToKernelTensor())]));
        }
    }

    private static IEnumerable<InvalidInput> Streams(KernelCase valid)
    {
        var contract = valid.Contract;
        if (!contract.Flags.Streaming || contract.Outputs.Count != 1)
        {
            yield break;
        }

        var output = contract.Outputs[0];
        var element = TensorData.ElementSize(output.DType);
        if (output.Shape.All(d => !d.IsSymbolic))
        {
            var bytes = (int)(TensorData.ElementCount([.. output.Shape.Select(d => d.Size)]) * element);
            yield return new InvalidInput($"a stream finalized into {bytes + 1} bytes (its output is {bytes})", (invoker, _) => FinalizeInto(invoker, contract.Name, bytes + 1));
            yield return new InvalidInput($"a stream finalized into {bytes - 1} bytes (its output is {bytes})", (invoker, _) => FinalizeInto(invoker, contract.Name, bytes - 1));
        }
        else
        {
            yield return new InvalidInput("a stream finalized into 0 bytes", (invoker, _) => FinalizeInto(invoker, contract.Name, 0));
            var limit = contract.OutputSymbols.FirstOrDefault(s => output.Shape.Any(d => d.Symbol == s.Name))?.Value ?? 0;
            if (limit > 0 && limit < int.MaxValue)
            {
                yield return new InvalidInput($"a stream finalized into {limit + 1} bytes, above its limit {limit}", (invoker, _) => FinalizeInto(invoker, contract.Name, (int)limit + 1));
            }
        }
    }

    private static InvalidInput Param(KernelCase valid, string description, Action<KernelRequest> set) =>
        InvalidInput.Call(description, state => valid.ToRequest(state, null, null, set));

    private static async Task CreateAndDispose(IKernelInvoker invoker, string kind, IReadOnlyList<KernelTensor> tensors) =>
        (await invoker.CreateStateAsync(kind, tensors).ConfigureAwait(false)).Dispose();

    private static async Task FinalizeInto(IKernelInvoker invoker, string kernel, int bytes)
    {
        await using var stream = await invoker.OpenStreamAsync(kernel).ConfigureAwait(false);
        await stream.AppendAsync(new byte[] { 1, 2, 3 }).ConfigureAwait(false);
        await stream.FinalizeAsync(new byte[bytes]).ConfigureAwait(false);
    }

    /// <summary>The first (tensor, axis) of <paramref name="specs"/> that uses <paramref name="symbol"/>.</summary>
    private static (int Tensor, int Axis) FirstUse(IReadOnlyList<TensorContract> specs, string symbol)
    {
        for (var t = 0; t < specs.Count; t++)
        {
            for (var axis = 0; axis < specs[t].Shape.Count; axis++)
            {
                if (specs[t].Shape[axis].Symbol == symbol)
                {
                    return (t, axis);
                }
            }
        }

        return (-1, -1);
    }

    private static TensorData Resized(TensorData tensor, int axis, long size)
    {
        var shape = tensor.Shape.ToArray();
        shape[axis] = size;
        return tensor.With(shape, TensorData.NewArray(tensor.DType, TensorData.ElementCount(shape)));
    }

    private static string Show(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
