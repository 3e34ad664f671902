using System.Globalization;
using System.Text;
using Tandem.Kernels;

namespace Tandem.Testing;

/// <summary>
/// One valid call of a kernel drawn from its descriptor: the sizes of its
/// symbols, the state's creation tensors (for a kernel that reads a state),
/// the inputs, the parameters and the sizes of its caller-chosen output
/// symbols. The same case runs on the managed twin and on the backend under test.
/// </summary>
public sealed class KernelCase
{
    private readonly (ParamContract Param, double Value)[] _params;

    internal KernelCase(
        KernelContract contract,
        int seed,
        IReadOnlyDictionary<string, long> symbols,
        IReadOnlyList<TensorData>? stateTensors,
        IReadOnlyList<TensorData> inputs,
        (ParamContract Param, double Value)[] parameters,
        IReadOnlyDictionary<string, long> outputSymbols)
    {
        Contract = contract;
        Seed = seed;
        Symbols = symbols;
        StateTensors = stateTensors;
        Inputs = inputs;
        _params = parameters;
        Params = parameters.ToDictionary(p => p.Param.Name, p => p.Value, StringComparer.Ordinal);
        OutputSymbols = outputSymbols;
    }

    /// <summary>The kernel's contract.</summary>
    public KernelContract Contract { get; }

    /// <summary>The seed the case was drawn from: <see cref="KernelContractTests.DrawCase"/> with it draws the same case again.</summary>
    public int Seed { get; }

    /// <summary>The size of every symbol of the kernel, its state and its output symbols ("batch", "dim", "n").</summary>
    public IReadOnlyDictionary<string, long> Symbols { get; }

    /// <summary>The state's creation tensors, in its kind's order, or null when the kernel reads no state.</summary>
    public IReadOnlyList<TensorData>? StateTensors { get; }

    /// <summary>The inputs, in the contract's order.</summary>
    public IReadOnlyList<TensorData> Inputs { get; }

    /// <summary>Every parameter by name (a boolean is 0 or 1, an enum the index of its choice).</summary>
    public IReadOnlyDictionary<string, double> Params { get; }

    /// <summary>The sizes of the output symbols no input binds.</summary>
    public IReadOnlyDictionary<string, long> OutputSymbols { get; }

    /// <summary>The call as a request, reading <paramref name="state"/> (made from <see cref="StateTensors"/> on the host that runs it).</summary>
    public KernelRequest ToRequest(KernelState? state) => ToRequest(state, inputs: null, outputSymbols: null, then: null);

    /// <summary>Like "seed 7: x f64[17]; factor = 3.5; state values f64[9]".</summary>
    public override string ToString()
    {
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"seed {Seed}: ");
        text.AppendJoin(", ", Inputs);
        foreach (var (param, value) in _params)
        {
            text.Append(CultureInfo.InvariantCulture, $"; {param.Name} = {ParamText(param, value)}");
        }

        foreach (var (symbol, size) in OutputSymbols)
        {
            text.Append(CultureInfo.InvariantCulture, $"; output {symbol} = {size}");
        }

        if (StateTensors is not null)
        {
            text.Append("; state ").AppendJoin(", ", StateTensors);
        }

        return text.ToString();
    }

    /// <summary>The symbol of axis 0 of a batchable kernel's first input, or null.</summary>
    internal static string? BatchSymbolOf(KernelContract contract) =>
        contract.Flags.Batchable && contract.Inputs.Count > 0 && contract.Inputs[0].Shape.Count > 0
            ? contract.Inputs[0].Shape[0].Symbol
            : null;

    internal long Rows => BatchSymbolOf(Contract) is { } batch ? Symbols[batch] : 1;

    /// <summary>A request with some parts replaced; <paramref name="then"/> runs last (a parameter or output symbol given again replaces or adds to the valid one).</summary>
    internal KernelRequest ToRequest(KernelState? state, IReadOnlyList<TensorData>? inputs, IReadOnlyDictionary<string, long>? outputSymbols, Action<KernelRequest>? then)
    {
        var request = new KernelRequest(Contract.Name) { State = state };
        foreach (var input in inputs ?? Inputs)
        {
            request.Input(input.ToKernelTensor());
        }

        foreach (var (param, value) in _params)
        {
            _ = param.Kind switch
            {
                ParamKind.Float => request.Param(param.Name, value),
                ParamKind.Enum => request.Param(param.Name, param.Choices[(int)value]),
                _ => request.Param(param.Name, (long)value),
            };
        }

        foreach (var (symbol, size) in outputSymbols ?? OutputSymbols)
        {
            request.OutputSymbol(symbol, size);
        }

        then?.Invoke(request);
        return request;
    }

    /// <summary>The case restricted to <paramref name="rows"/> (in that order) of a batchable kernel: inputs batched on axis 0 are sliced, the others kept.</summary>
    internal KernelCase SelectRows(IReadOnlyList<long> rows)
    {
        var batch = BatchSymbolOf(Contract) ?? throw new InvalidOperationException($"kernel '{Contract.Name}' is not batchable");
        var inputs = new TensorData[Inputs.Count];
        for (var i = 0; i < inputs.Length; i++)
        {
            inputs[i] = Contract.Inputs[i].Shape.Count > 0 && Contract.Inputs[i].Shape[0].Symbol == batch
                ? Concat(Inputs[i], rows)
                : Inputs[i];
        }

        var symbols = new Dictionary<string, long>(Symbols, StringComparer.Ordinal) { [batch] = rows.Count };
        return new KernelCase(Contract, Seed, symbols, StateTensors, inputs, _params, OutputSymbols);
    }

    internal static string ParamText(ParamContract param, double value) => param.Kind switch
    {
        ParamKind.Enum when value >= 0 && value < param.Choices.Count => param.Choices[(int)value],
        ParamKind.Bool => value != 0 ? "true" : "false",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    private static TensorData Concat(TensorData tensor, IReadOnlyList<long> rows)
    {
        var rowLength = tensor.RowLength;
        var data = TensorData.NewArray(tensor.DType, rows.Count * rowLength);
        for (var r = 0; r < rows.Count; r++)
        {
            Array.Copy(tensor.Data, rows[r] * rowLength, data, r * rowLength, rowLength);
        }

        var shape = tensor.Shape.ToArray();
        shape[0] = rows.Count;
        return tensor.With(shape, data);
    }
}
