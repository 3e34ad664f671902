using System.Buffers;
using System.Runtime.CompilerServices;
using Tandem.Contracts.V1;
using Tandem.Internal.Native;

namespace Tandem.Internal.Kernels;

/// <summary>
/// One kernel call's arguments in the C ABI's layout: tensors are pinned when
/// added and stay pinned until the call is disposed, so every backend reads
/// them in place — Native by pointer, Managed as spans over the same memory.
/// </summary>
internal sealed class KernelCall(KernelDescriptor descriptor) : IDisposable
{
    private const int MaxPins = 2 * NativeCallArgs.Capacity;

    // One call object per thread for synchronous calls (Rent): a synchronous
    // call ends on the thread that started it, before the caller regains
    // control, so the object is free again when Dispose returns it. A call
    // made while another is running on the same thread (a managed twin that
    // calls Tandem) finds the slot empty and allocates its own.
    [ThreadStatic]
    private static KernelCall? t_free;

    // Allocated on the first pin: calls over caller-pinned pointers need none.
    private MemoryHandle[]? _pins;
    private int _pinCount;
    private NativeCallArgs _args;
    // Rented and not yet disposed: Dispose returns it once, never twice.
    private bool _leased;

    public KernelDescriptor Descriptor { get; private set; } = descriptor;

    /// <summary>
    /// A call object for a synchronous call, reused by this thread: it must
    /// not outlive the call (no await, nothing keeps it after
    /// <see cref="Dispose"/>), which returns it.
    /// </summary>
    public static KernelCall Rent(KernelDescriptor descriptor)
    {
        var call = t_free;
        if (call is null)
        {
            return new KernelCall(descriptor) { _leased = true };
        }

        t_free = null;
        call.Descriptor = descriptor;
        call._leased = true;
        return call;
    }

    public string Kernel => Descriptor.Name;

    /// <summary>The state the kernel reads (a collection), or null.</summary>
    public IKernelState? State { get; set; }

    /// <summary>Rough multiply-adds, to choose between running inline and on a worker thread.</summary>
    public long Work { get; set; }

    /// <summary>Units of work by the descriptor's work bound (set by <see cref="CallWork.Check"/>; 0 without one), which batches are split by.</summary>
    public ulong WorkUnits { get; set; }

    internal ref NativeCallArgs Args => ref _args;

    public int InputCount => _args.InputCount;

    public int OutputCount => _args.OutputCount;

    public int ParamCount => _args.ParamCount;

    public unsafe KernelCall Input<T>(ReadOnlyMemory<T> data, params ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        // Check capacity and type before pinning, so a refused tensor leaves no pin behind.
        NativeCallArgs.EnsureRoom(_args.InputCount, "inputs");
        _ = DTypeOf<T>();
        _args.AddInput(Tensor(Pin(data), data.Length, shape));
        return this;
    }

    /// <summary>An input the caller keeps pinned (a span under <c>fixed</c>) for the whole call.</summary>
    public unsafe KernelCall Input<T>(T* data, int length, params ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        _args.AddInput(Tensor(data, length, shape));
        return this;
    }

    public unsafe KernelCall Output<T>(Memory<T> data, params ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        NativeCallArgs.EnsureRoom(_args.OutputCount, "outputs");
        _ = DTypeOf<T>();
        _args.AddOutput(Tensor(Pin((ReadOnlyMemory<T>)data), data.Length, shape));
        return this;
    }

    /// <summary>An output the caller keeps pinned for the whole call.</summary>
    public unsafe KernelCall Output<T>(T* data, int length, params ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        _args.AddOutput(Tensor(data, length, shape));
        return this;
    }

    /// <summary>An input whose header (data, shape, dtype) was filled by a native library, such as a view into a stored state kept mapped for the whole call.</summary>
    internal KernelCall Input(NativeTensor header)
    {
        NativeCallArgs.EnsureRoom(_args.InputCount, "inputs");
        _args.AddInput(header);
        return this;
    }

    /// <summary>Marks an omitted optional tensor (state creation only).</summary>
    public KernelCall Absent()
    {
        _args.AddInput(default);
        return this;
    }

    public KernelCall Param(long value)
    {
        _args.AddParam(NativeParam.Int(value));
        return this;
    }

    public KernelCall Param(double value)
    {
        _args.AddParam(new NativeParam { Kind = NativeParam.KindFloat, FloatValue = value });
        return this;
    }

    public unsafe ReadOnlySpan<T> InputSpan<T>(int index)
        where T : unmanaged => new(_args.Inputs[index].Data, (int)(_args.Inputs[index].ByteLength / (ulong)sizeof(T)));

    public unsafe Span<T> OutputSpan<T>(int index)
        where T : unmanaged => new(_args.Outputs[index].Data, (int)(_args.Outputs[index].ByteLength / (ulong)sizeof(T)));

    public unsafe ReadOnlyMemory<T> InputMemory<T>(int index)
        where T : unmanaged => new PointerMemory<T>((T*)_args.Inputs[index].Data, InputSpan<T>(index).Length).Memory;

    public unsafe Memory<T> OutputMemory<T>(int index)
        where T : unmanaged => new PointerMemory<T>((T*)_args.Outputs[index].Data, OutputSpan<T>(index).Length).Memory;

    public long OutputDim(int index, int axis) => _args.Outputs[index].Shape[axis];

    public bool HasInput(int index) => _args.Inputs[index].DType != 0;

    public long InputDim(int index, int axis) => _args.Inputs[index].Shape[axis];

    public long IntParam(int index) => _args.Params[index].IntValue;

    public double FloatParam(int index) => _args.Params[index].Kind == NativeParam.KindFloat ? _args.Params[index].FloatValue : _args.Params[index].IntValue;

    public int InputRank(int index) => (int)_args.Inputs[index].Rank;

    public int OutputRank(int index) => (int)_args.Outputs[index].Rank;

    public uint InputDType(int index) => _args.Inputs[index].DType;

    public uint OutputDType(int index) => _args.Outputs[index].DType;

    public void Dispose()
    {
        for (var i = 0; i < _pinCount; i++)
        {
            _pins![i].Dispose();
        }

        _pinCount = 0;
        if (_leased)
        {
            _leased = false;
            // Only the counts: the headers beyond them are never read, and each Add overwrites its slot.
            _args.InputCount = 0;
            _args.OutputCount = 0;
            _args.ParamCount = 0;
            State = null;
            Work = 0;
            WorkUnits = 0;
            t_free = this;
        }
    }

    internal static uint DTypeOf<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return NativeDType.F32;
        if (typeof(T) == typeof(double)) return NativeDType.F64;
        if (typeof(T) == typeof(long)) return NativeDType.I64;
        if (typeof(T) == typeof(int)) return NativeDType.I32;
        if (typeof(T) == typeof(byte)) return NativeDType.U8;
        throw new NotSupportedException($"tensors of {typeof(T).Name} cannot cross the boundary");
    }

    private unsafe T* Pin<T>(ReadOnlyMemory<T> data)
        where T : unmanaged
    {
        _pins ??= new MemoryHandle[MaxPins];
        var pin = data.Pin();
        _pins[_pinCount++] = pin;
        return (T*)pin.Pointer;
    }

    private static unsafe NativeTensor Tensor<T>(T* data, int length, ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        if (shape.Length > 4)
        {
            throw new InvalidOperationException($"a tensor has at most 4 dimensions, got {shape.Length}");
        }

        var tensor = new NativeTensor { Data = data, ByteLength = (ulong)length * (ulong)sizeof(T), Rank = (uint)shape.Length, DType = DTypeOf<T>() };
        for (var axis = 0; axis < shape.Length; axis++)
        {
            tensor.Shape[axis] = shape[axis];
        }

        return tensor;
    }
}
