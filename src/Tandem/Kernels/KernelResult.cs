namespace Tandem.Kernels;

/// <summary>The outputs of one call through <see cref="IKernelInvoker"/>, in the contract's order.</summary>
public sealed class KernelResult
{
    private readonly Array[] _outputs;
    private readonly long[][] _shapes;

    internal KernelResult(KernelContract contract, BackendKind backend, Array[] outputs, long[][] shapes)
    {
        Contract = contract;
        Backend = backend;
        _outputs = outputs;
        _shapes = shapes;
    }

    public KernelContract Contract { get; }

    /// <summary>The backend the call was routed to (a fallback, when one happened, is counted in <c>tandem.fallbacks</c>).</summary>
    public BackendKind Backend { get; }

    public int OutputCount => _outputs.Length;

    /// <summary>Output <paramref name="index"/>'s data.</summary>
    /// <exception cref="InvalidOperationException">The output holds another element type.</exception>
    public ReadOnlyMemory<T> Output<T>(int index)
        where T : unmanaged => _outputs[index] as T[]
            ?? throw new InvalidOperationException($"output '{Contract.Outputs[index].Name}' holds {Contract.Outputs[index].DType}, not {typeof(T).Name}");

    /// <summary>The output named <paramref name="name"/>'s data.</summary>
    public ReadOnlyMemory<T> Output<T>(string name)
        where T : unmanaged => Output<T>(IndexOf(name));

    /// <summary>Output <paramref name="index"/>'s shape.</summary>
    public IReadOnlyList<long> ShapeOf(int index) => _shapes[index];

    public IReadOnlyList<long> ShapeOf(string name) => _shapes[IndexOf(name)];

    private int IndexOf(string name)
    {
        for (var i = 0; i < Contract.Outputs.Count; i++)
        {
            if (Contract.Outputs[i].Name == name)
            {
                return i;
            }
        }

        throw new KeyNotFoundException($"kernel '{Contract.Name}' has no output '{name}'");
    }
}
