namespace Tandem.Kernels;

/// <summary>
/// One call of a kernel through <see cref="IKernelInvoker"/>: inputs in the
/// contract's order, parameters by name or position (the rest take their
/// defaults), the state the kernel reads, and the sizes of output symbols
/// that no input binds. Validated against the contract when invoked.
/// </summary>
public sealed class KernelRequest
{
    private readonly List<KernelTensor> _inputs = new(2);
    private List<ParamValue>? _params;
    private List<(string Symbol, long Size)>? _outputSymbols;

    public KernelRequest(string kernel)
    {
        ArgumentException.ThrowIfNullOrEmpty(kernel);
        Kernel = kernel;
    }

    public string Kernel { get; }

    /// <summary>The state the kernel reads (its contract's state kind), or null.</summary>
    public KernelState? State { get; set; }

    public IReadOnlyList<KernelTensor> Inputs => _inputs;

    internal IReadOnlyList<ParamValue> Params => (IReadOnlyList<ParamValue>?)_params ?? [];

    internal IReadOnlyList<(string Symbol, long Size)> OutputSymbols => (IReadOnlyList<(string, long)>?)_outputSymbols ?? [];

    /// <summary>Adds the next input.</summary>
    public KernelRequest Input<T>(ReadOnlyMemory<T> data, params ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        _inputs.Add(KernelTensor.Of(data, shape));
        return this;
    }

    /// <summary>Adds the next input.</summary>
    public KernelRequest Input(KernelTensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        _inputs.Add(tensor);
        return this;
    }

    /// <summary>Sets an integer, boolean (0 or 1) or enum (choice index) parameter, or a float one to a whole value.</summary>
    public KernelRequest Param(string name, long value) => AddParam(new ParamValue(Name(name), -1, value, 0, false, null));

    public KernelRequest Param(string name, double value) => AddParam(new ParamValue(Name(name), -1, 0, value, true, null));

    public KernelRequest Param(string name, bool value) => AddParam(new ParamValue(Name(name), -1, value ? 1 : 0, 0, false, null));

    /// <summary>Sets an enum parameter by the name of its choice.</summary>
    public KernelRequest Param(string name, string choice) => AddParam(new ParamValue(Name(name), -1, 0, 0, false, choice ?? throw new ArgumentNullException(nameof(choice))));

    /// <summary>Sets parameter <paramref name="index"/> (call order).</summary>
    public KernelRequest Param(int index, long value) => AddParam(new ParamValue(null, index, value, 0, false, null));

    /// <summary>Sets parameter <paramref name="index"/> (call order).</summary>
    public KernelRequest Param(int index, double value) => AddParam(new ParamValue(null, index, 0, value, true, null));

    /// <summary>Sizes an output dimension that no input binds (a digest length, the k of a top-k).</summary>
    public KernelRequest OutputSymbol(string symbol, long size)
    {
        ArgumentException.ThrowIfNullOrEmpty(symbol);
        (_outputSymbols ??= new(1)).Add((symbol, size));
        return this;
    }

    private static string Name(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return name;
    }

    private KernelRequest AddParam(ParamValue value)
    {
        (_params ??= new(2)).Add(value);
        return this;
    }

    internal readonly record struct ParamValue(string? Name, int Index, long IntValue, double FloatValue, bool IsFloat, string? Choice);
}
