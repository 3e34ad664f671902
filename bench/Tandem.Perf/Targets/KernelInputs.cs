using Microsoft.Extensions.DependencyInjection;
using Tandem.Kernels;
using Tandem.Perf.Cli;
using Tandem.Testing;

namespace Tandem.Perf.Targets;

/// <summary>
/// Valid inputs for any kernel, drawn from its descriptor by the contract
/// test kit's generator (<see cref="KernelContractTests"/>' <c>DrawCase</c>),
/// with the sizes, parameters and value ranges the command line fixes:
/// <list type="bullet">
/// <item>a symbol takes its <c>--shape</c> size; otherwise the batch symbol is
/// 1, an output symbol named like an integer parameter takes that
/// parameter's value (top-k's <c>k</c>), another output symbol
/// min(its limit, 32), and any other symbol 64;</item>
/// <item>a parameter takes its <c>--param</c> value, otherwise its declared default;</item>
/// <item>an input's elements come from its <c>--values</c> ranges, otherwise
/// from the kit's defaults (bytes any value, integers −100 to 100, floats −10 to 10);</item>
/// <item>optional state tensors are left out (a state's own ids, say), so
/// only what the state kind requires is drawn.</item>
/// </list>
/// </summary>
internal sealed class KernelInputs : KernelContractTests
{
    /// <summary>Size of a symbol no option and no rule above sizes.</summary>
    public const long DefaultSymbolSize = 64;

    /// <summary>Size of an output symbol that no option and no parameter sizes (capped by its limit).</summary>
    public const long DefaultOutputSymbolSize = 32;

    private readonly KernelContractSet _contracts;
    private readonly string _kernel;
    private readonly IReadOnlyDictionary<string, long> _shape;
    private readonly IReadOnlyDictionary<string, double> _params;
    private readonly IReadOnlyDictionary<string, ValueRange[]> _values;
    private bool _drawState;

    public KernelInputs(KernelContractSet contracts, string kernel, IReadOnlyDictionary<string, long> shape, IReadOnlyDictionary<string, string> parameters, IReadOnlyDictionary<string, ValueRange[]> values)
        : base(new KernelTestHosts())
    {
        _contracts = contracts;
        _kernel = kernel;
        _shape = shape;
        _values = values;
        var contract = contracts[kernel];
        _params = ParseParams(contract, parameters);
        CheckNames(contract, shape, values);
    }

    public KernelContract KernelContract => Contract;

    protected override string Kernel => _kernel;

    protected override KernelContractSet Contracts => _contracts;

    /// <summary>Every parameter's value (a boolean 0 or 1, an enum its choice's index).</summary>
    public IReadOnlyDictionary<string, double> Params => _params;

    /// <summary>Draws case <paramref name="seed"/>; its state tensors only when <paramref name="withState"/> (the state is built once, from the first case).</summary>
    public KernelCase Draw(int seed, bool withState)
    {
        _drawState = withState;
        return DrawCase(seed, _shape);
    }

    /// <summary>The state tensors of <paramref name="case"/> as the state kind takes them: optional ones absent.</summary>
    public IReadOnlyList<KernelTensor> StateTensors(KernelCase @case)
    {
        var kind = Contract.StateKind ?? throw new InvalidOperationException($"kernel '{_kernel}' reads no state");
        var tensors = new KernelTensor[kind.Tensors.Count];
        for (var i = 0; i < tensors.Length; i++)
        {
            tensors[i] = kind.OptionalTensors.Contains(kind.Tensors[i].Name) ? KernelTensor.Absent : @case.StateTensors![i].ToKernelTensor();
        }

        return tensors;
    }

    protected override void ConfigureServices(IServiceCollection services, BackendKind backend) =>
        throw new InvalidOperationException("tandem-perf builds its own hosts; KernelInputs only draws inputs");

    protected override long DrawSymbol(string symbol, KernelDraw draw)
    {
        if (symbol == draw.BatchSymbol)
        {
            return 1;
        }

        foreach (var output in Contract.OutputSymbols)
        {
            if (output.Name == symbol)
            {
                var limit = output.Value > 0 ? output.Value : long.MaxValue;
                var param = Contract.Params.FirstOrDefault(p => p.Name == symbol && p.Kind == ParamKind.Int);
                return param is null ? Math.Min(limit, DefaultOutputSymbolSize) : Math.Min(limit, (long)_params[param.Name]);
            }
        }

        return DefaultSymbolSize;
    }

    protected override double DrawParam(ParamContract param, KernelDraw draw) => _params[param.Name];

    protected override Array DrawTensor(TensorContract tensor, IReadOnlyList<long> shape, KernelDraw draw)
    {
        var kind = Contract.StateKind;
        if (kind is not null && kind.Tensors.Contains(tensor) && (!_drawState || kind.OptionalTensors.Contains(tensor.Name)))
        {
            // Not sent: an empty array stands in (the state is built once; optional tensors are left out).
            return TensorData.NewArray(tensor.DType, 0);
        }

        if (!_values.TryGetValue(tensor.Name, out var ranges))
        {
            return base.DrawTensor(tensor, shape, draw);
        }

        var data = TensorData.NewArray(tensor.DType, shape.Aggregate(1L, (a, b) => a * b));
        var columns = shape.Count == 0 ? 1 : Math.Max(1, shape[^1]);
        for (var i = 0; i < data.Length; i++)
        {
            var value = ranges[(int)(i % columns % ranges.Length)].Draw(draw.Random);
            if (data is double[] doubles)
            {
                doubles[i] = value;
            }
            else if (data is float[] floats)
            {
                floats[i] = (float)value;
            }
            else if (data is long[] longs)
            {
                longs[i] = (long)Math.Round(value);
            }
            else if (data is int[] ints)
            {
                ints[i] = (int)Math.Round(value);
            }
            else
            {
                ((byte[])data)[i] = (byte)Math.Clamp(Math.Round(value), 0, 255);
            }
        }

        return data;
    }

    private static Dictionary<string, double> ParseParams(KernelContract contract, IReadOnlyDictionary<string, string> given)
    {
        foreach (var name in given.Keys)
        {
            if (!contract.Params.Any(p => p.Name == name))
            {
                throw new UsageException($"--param {name}: kernel '{contract.Name}' has no parameter '{name}'; it takes {List(contract.Params.Select(p => p.Name))}");
            }
        }

        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var param in contract.Params)
        {
            values[param.Name] = given.TryGetValue(param.Name, out var text) ? ParseParam(contract, param, text) : param.Default;
        }

        return values;
    }

    private static double ParseParam(KernelContract contract, ParamContract param, string text)
    {
        double value;
        switch (param.Kind)
        {
            case ParamKind.Enum:
                var index = param.Choices.ToList().IndexOf(text);
                if (index < 0)
                {
                    throw new UsageException($"--param {param.Name}={text}: choose one of {List(param.Choices)}");
                }

                return index;
            case ParamKind.Bool:
                return text switch
                {
                    "true" or "1" => 1,
                    "false" or "0" => 0,
                    _ => throw new UsageException($"--param {param.Name}={text}: use true or false"),
                };
            default:
                if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out value) || !double.IsFinite(value))
                {
                    throw new UsageException($"--param {param.Name}={text}: '{text}' is not a number");
                }

                if (param.Kind == ParamKind.Int && value != Math.Floor(value))
                {
                    throw new UsageException($"--param {param.Name}={text}: parameter '{param.Name}' of '{contract.Name}' is an integer");
                }

                if (value < param.Min || value > param.Max)
                {
                    throw new UsageException($"--param {param.Name}={text}: parameter '{param.Name}' of '{contract.Name}' is {param.Min:G} to {param.Max:G}");
                }

                return value;
        }
    }

    private static void CheckNames(KernelContract contract, IReadOnlyDictionary<string, long> shape, IReadOnlyDictionary<string, ValueRange[]> values)
    {
        var tensors = contract.Inputs.Concat(contract.Outputs).Concat(contract.StateKind?.Tensors ?? []).ToArray();
        var symbols = tensors.SelectMany(t => t.Shape).Where(d => d.IsSymbolic).Select(d => d.Symbol!)
            .Concat(contract.OutputSymbols.Select(s => s.Name)).Distinct().ToArray();
        foreach (var symbol in shape.Keys)
        {
            if (!symbols.Contains(symbol))
            {
                throw new UsageException($"--shape {symbol}: kernel '{contract.Name}' has no symbol '{symbol}'; its symbols are {List(symbols)}");
            }
        }

        foreach (var name in values.Keys)
        {
            if (!tensors.Any(t => t.Name == name))
            {
                throw new UsageException($"--values {name}: kernel '{contract.Name}' has no tensor '{name}'; its inputs are {List(contract.Inputs.Concat(contract.StateKind?.Tensors ?? []).Select(t => t.Name))}");
            }
        }
    }

    private static string List(IEnumerable<string> names)
    {
        var all = names.ToArray();
        return all.Length == 0 ? "none" : string.Join(", ", all);
    }
}
