using Tandem.Kernels;

namespace Tandem.Testing;

/// <summary>
/// A tensor the kit drew (or a derived class supplied): its element type,
/// shape and row-major data, kept as an array so the kit can slice rows,
/// change an element or describe it in a failure message.
/// </summary>
public sealed class TensorData
{
    /// <param name="name">The contract's name of the tensor, for messages.</param>
    /// <param name="dtype">The element type; <paramref name="data"/> must be its array type (byte[], int[], long[], float[] or double[]).</param>
    /// <param name="shape">The dimensions, outermost first.</param>
    /// <param name="data">The elements, row-major.</param>
    /// <exception cref="ArgumentException">The array's type is not <paramref name="dtype"/>'s.</exception>
    public TensorData(string name, TensorDType dtype, IReadOnlyList<long> shape, Array data)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (data.GetType() != ArrayTypeOf(dtype))
        {
            throw new ArgumentException($"tensor '{name}' is {Lower(dtype)}, so its data must be {ArrayTypeOf(dtype).Name}, not {data.GetType().Name}", nameof(data));
        }

        Name = name;
        DType = dtype;
        Shape = [.. shape];
        Data = data;
    }

    /// <summary>The contract's name of the tensor.</summary>
    public string Name { get; }

    /// <summary>The element type.</summary>
    public TensorDType DType { get; }

    /// <summary>The dimensions, outermost first.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>The elements, row-major (byte[], int[], long[], float[] or double[]).</summary>
    public Array Data { get; }

    /// <summary>The tensor as a kernel input (over <see cref="Data"/>, not a copy).</summary>
    public KernelTensor ToKernelTensor() => Data switch
    {
        byte[] bytes => KernelTensor.Of<byte>(bytes, [.. Shape]),
        int[] ints => KernelTensor.Of<int>(ints, [.. Shape]),
        long[] longs => KernelTensor.Of<long>(longs, [.. Shape]),
        float[] floats => KernelTensor.Of<float>(floats, [.. Shape]),
        _ => KernelTensor.Of<double>((double[])Data, [.. Shape]),
    };

    /// <summary>Like "x f64[17, 4]".</summary>
    public override string ToString() => $"{Name} {Lower(DType)}[{string.Join(", ", Shape)}]";

    /// <summary>A new zeroed array of <paramref name="dtype"/>'s element type.</summary>
    public static Array NewArray(TensorDType dtype, long length) => Array.CreateInstance(ArrayTypeOf(dtype).GetElementType()!, checked((int)length));

    internal static Type ArrayTypeOf(TensorDType dtype) => dtype switch
    {
        TensorDType.U8 => typeof(byte[]),
        TensorDType.I32 => typeof(int[]),
        TensorDType.I64 => typeof(long[]),
        TensorDType.F32 => typeof(float[]),
        _ => typeof(double[]),
    };

    internal static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.U8 => 1,
        TensorDType.I32 or TensorDType.F32 => 4,
        _ => 8,
    };

    internal static string Lower(TensorDType dtype) => dtype.ToString().ToLowerInvariant();

    internal static long ElementCount(IReadOnlyList<long> shape)
    {
        var elements = 1L;
        foreach (var size in shape)
        {
            elements *= size;
        }

        return elements;
    }

    /// <summary>Elements per row (index on axis 0).</summary>
    internal long RowLength => Shape.Count == 0 ? 1 : ElementCount([.. Shape.Skip(1)]);

    /// <summary>Rows <paramref name="start"/> .. start+count along axis 0.</summary>
    internal TensorData Rows(long start, long count)
    {
        var rowLength = RowLength;
        var data = NewArray(DType, count * rowLength);
        Array.Copy(Data, start * rowLength, data, 0, count * rowLength);
        var shape = Shape.ToArray();
        shape[0] = count;
        return new TensorData(Name, DType, shape, data);
    }

    /// <summary>The same tensor with another shape and data (a bad input).</summary>
    internal TensorData With(IReadOnlyList<long> shape, Array data) => new(Name, DType, shape, data);
}
