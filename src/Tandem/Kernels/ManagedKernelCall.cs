using Tandem.Internal.Kernels;
using Tandem.Internal.Managed;

namespace Tandem.Kernels;

/// <summary>
/// The tensors and parameters of one call as a managed twin sees them:
/// inputs, outputs and parameters in the contract's order, already validated
/// against it. The views are valid only until the twin returns.
/// </summary>
public readonly struct ManagedKernelCall
{
    private readonly KernelCall _call;

    internal ManagedKernelCall(KernelCall call) => _call = call;

    /// <summary>The kernel (or, for a state's creation, the kernel that reads it).</summary>
    public string Kernel => _call.Kernel;

    public int InputCount => _call.InputCount;

    public int OutputCount => _call.OutputCount;

    /// <summary>Whether input <paramref name="index"/> was given (an optional state tensor may be omitted).</summary>
    public bool HasInput(int index) => _call.HasInput(index);

    public ReadOnlySpan<T> Input<T>(int index)
        where T : unmanaged
    {
        CheckType<T>(_call.InputDType(index), "input", index);
        return _call.InputSpan<T>(index);
    }

    /// <summary>Input <paramref name="index"/> as memory, for parallel loops.</summary>
    public ReadOnlyMemory<T> InputMemory<T>(int index)
        where T : unmanaged
    {
        CheckType<T>(_call.InputDType(index), "input", index);
        return _call.InputMemory<T>(index);
    }

    public int InputRank(int index) => _call.InputRank(index);

    public long InputDim(int index, int axis) => _call.InputDim(index, axis);

    public Span<T> Output<T>(int index)
        where T : unmanaged
    {
        CheckType<T>(_call.OutputDType(index), "output", index);
        return _call.OutputSpan<T>(index);
    }

    /// <summary>Output <paramref name="index"/> as memory, for parallel loops.</summary>
    public Memory<T> OutputMemory<T>(int index)
        where T : unmanaged
    {
        CheckType<T>(_call.OutputDType(index), "output", index);
        return _call.OutputMemory<T>(index);
    }

    public int OutputRank(int index) => _call.OutputRank(index);

    public long OutputDim(int index, int axis) => _call.OutputDim(index, axis);

    /// <summary>An integer, boolean (0 or 1) or enum (choice index) parameter.</summary>
    public long IntParam(int index) => _call.IntParam(index);

    public double FloatParam(int index) => _call.FloatParam(index);

    public bool BoolParam(int index) => _call.IntParam(index) != 0;

    /// <summary>The state the kernel reads, as its <see cref="ManagedStateKind"/> built it.</summary>
    /// <exception cref="TandemException">FAILED_PRECONDITION when the call has no managed state of type <typeparamref name="TState"/>.</exception>
    public TState State<TState>()
        where TState : class => (_call.State as ManagedUserState)?.Value as TState
            ?? throw new TandemException(TandemStatusCode.FailedPrecondition, $"the call of '{Kernel}' has no managed state of type {typeof(TState).Name}", Kernel, BackendKind.Managed);

    private static void CheckType<T>(uint dtype, string what, int index)
        where T : unmanaged
    {
        if (KernelCall.DTypeOf<T>() != dtype)
        {
            throw new InvalidOperationException($"{what} {index} holds {(TensorDType)dtype}, not {typeof(T).Name}");
        }
    }
}
