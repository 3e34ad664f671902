using Tandem.Internal.Kernels;

namespace Tandem.Kernels;

/// <summary>
/// One typed call of a kernel, for <see cref="IKernelInvoker.InvokeAsync{TCall, TResult}"/>:
/// the lean path generated facades take. A struct implementing it writes its
/// inputs and parameters straight into the call, takes the outputs the
/// invoker sized from the contract, and turns them into its result, so a call
/// builds no request, list or result object of its own.
/// </summary>
/// <typeparam name="TResult">What the call returns.</typeparam>
public interface IKernelCall<out TResult>
{
    /// <summary>Adds the inputs (in the contract's order), the parameters (in call order; trailing ones may be left to their defaults) and the sizes of caller-chosen output symbols.</summary>
    void Write(ref KernelCallWriter writer);

    /// <summary>Takes every output, in the contract's order, with <see cref="KernelOutputBinder.Output{T}"/>.</summary>
    void BindOutputs(ref KernelOutputBinder binder);

    /// <summary>The result, once the kernel wrote the outputs.</summary>
    TResult Result(BackendKind backend);
}

/// <summary>Writes the inputs, parameters and output-symbol sizes of one <see cref="IKernelCall{TResult}"/>; valid only inside <see cref="IKernelCall{TResult}.Write"/>.</summary>
public ref struct KernelCallWriter
{
    private readonly KernelCall _call;
    private readonly KernelInvoker.Plan _plan;
    private readonly Span<long> _chosen;

    internal KernelCallWriter(KernelCall call, KernelInvoker.Plan plan, Span<long> chosen)
    {
        _call = call;
        _plan = plan;
        _chosen = chosen;
    }

    /// <summary>Bytes of input added so far (the work estimate the backend uses to decide whether a call runs inline).</summary>
    internal long InputBytes { get; private set; }

    /// <summary>Adds the next input; its memory is pinned, not copied, until the call completes.</summary>
    public void Input<T>(ReadOnlyMemory<T> data, params ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        _call.Input(data, shape);
        InputBytes += (long)data.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
    }

    /// <summary>Adds the next parameter (call order): an integer, or an enum's choice index.</summary>
    public void Param(long value) => _call.Param(value);

    /// <summary>Adds the next parameter (call order).</summary>
    public void Param(double value) => _call.Param(value);

    /// <summary>Adds the next parameter (call order).</summary>
    public void Param(bool value) => _call.Param(value ? 1L : 0L);

    /// <summary>Sizes an output dimension that no input binds (a digest length, the k of a top-k).</summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT when the kernel has no such output symbol or the size is out of its range.</exception>
    public void OutputSymbol(string symbol, long size) => _chosen[_plan.CheckOutputSymbol(_call.Kernel, symbol, size)] = size;
}

/// <summary>Hands out the outputs of one <see cref="IKernelCall{TResult}"/>, sized from the contract; valid only inside <see cref="IKernelCall{TResult}.BindOutputs"/>.</summary>
public ref struct KernelOutputBinder
{
    private readonly KernelCall _call;
    private readonly KernelContract _contract;
    private readonly ReadOnlySpan<long> _shapes;

    internal KernelOutputBinder(KernelCall call, KernelContract contract, ReadOnlySpan<long> shapes)
    {
        _call = call;
        _contract = contract;
        _shapes = shapes;
    }

    /// <summary>Allocates output <paramref name="index"/> (outputs are taken in order) and adds it to the call.</summary>
    /// <exception cref="InvalidOperationException">Outputs taken out of order, or <typeparamref name="T"/> is not the output's element type.</exception>
    public T[] Output<T>(int index)
        where T : unmanaged
    {
        if (index != _call.OutputCount || index >= _contract.Outputs.Count)
        {
            throw new InvalidOperationException($"outputs of '{_contract.Name}' are taken in order: expected output {_call.OutputCount}, got {index}");
        }

        var spec = _contract.Outputs[index];
        if ((uint)spec.DType != KernelCall.DTypeOf<T>())
        {
            throw new InvalidOperationException($"output '{spec.Name}' holds {spec.DType}, not {typeof(T).Name}");
        }

        var shape = _shapes.Slice(index * KernelInvoker.MaxRank, spec.Shape.Count);
        var elements = 1L;
        foreach (var size in shape)
        {
            elements *= size;
        }

        var data = new T[elements];
        _call.Output(data.AsMemory(), shape);
        return data;
    }

    /// <summary>The size of axis <paramref name="axis"/> of output <paramref name="output"/>.</summary>
    public readonly long Dim(int output, int axis) => _shapes[(output * KernelInvoker.MaxRank) + axis];
}
