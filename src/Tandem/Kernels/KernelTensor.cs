using Tandem.Internal.Kernels;

namespace Tandem.Kernels;

/// <summary>
/// A tensor handed to a kernel: contiguous row-major data and its shape. The
/// data is pinned for the length of the call only and never copied on the
/// way in process; the caller must not change it until the call completes.
/// </summary>
public abstract class KernelTensor
{
    private protected KernelTensor(TensorDType? dtype, long[] shape)
    {
        DType = dtype;
        Shape = shape;
    }

    /// <summary>An omitted optional tensor (state creation only).</summary>
    public static KernelTensor Absent { get; } = new AbsentTensor();

    /// <summary>The element type, or null for <see cref="Absent"/>.</summary>
    public TensorDType? DType { get; }

    public IReadOnlyList<long> Shape { get; }

    /// <summary>A tensor over <paramref name="data"/> (u8, i32, i64, f32 or f64) with <paramref name="shape"/> (at most 4 dimensions).</summary>
    /// <exception cref="NotSupportedException">The element type cannot cross the boundary.</exception>
    public static KernelTensor Of<T>(ReadOnlyMemory<T> data, params ReadOnlySpan<long> shape)
        where T : unmanaged => new Tensor<T>(data, shape.ToArray());

    internal long[] ShapeArray => (long[])Shape;

    internal abstract void AddTo(KernelCall call);

    /// <summary>Data length in bytes.</summary>
    internal abstract long ByteLength { get; }

    private sealed class Tensor<T>(ReadOnlyMemory<T> data, long[] shape) : KernelTensor((TensorDType)KernelCall.DTypeOf<T>(), shape)
        where T : unmanaged
    {
        internal override long ByteLength => (long)data.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

        internal override void AddTo(KernelCall call) => call.Input(data, ShapeArray);
    }

    private sealed class AbsentTensor() : KernelTensor(null, [])
    {
        internal override long ByteLength => 0;

        internal override void AddTo(KernelCall call) => call.Absent();
    }
}
