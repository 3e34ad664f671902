using Tandem.Contracts.V1;

namespace Tandem.Kernels;

/// <summary>Element type of a tensor; the values are the C ABI's (tandem_dtype_t).</summary>
public enum TensorDType
{
    U8 = 1,
    I32 = 2,
    I64 = 3,
    F32 = 4,
    F64 = 5,
}

/// <summary>One dimension of a tensor contract: a fixed size, or a symbol ("batch", "dim") shared by the tensors of one kernel.</summary>
public readonly struct TensorDim : IEquatable<TensorDim>
{
    private TensorDim(long size, string? symbol)
    {
        Size = size;
        Symbol = symbol;
    }

    /// <summary>The fixed size, or -1 when the dimension is symbolic.</summary>
    public long Size { get; }

    /// <summary>The symbol naming the dimension, or null when it is fixed.</summary>
    public string? Symbol { get; }

    public bool IsSymbolic => Symbol is not null;

    public static TensorDim Fixed(long size) => new(size, null);

    public static TensorDim Symbolic(string symbol) => new(-1, symbol ?? throw new ArgumentNullException(nameof(symbol)));

    public bool Equals(TensorDim other) => Size == other.Size && Symbol == other.Symbol;

    public override bool Equals(object? obj) => obj is TensorDim other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Size, Symbol);

    public override string ToString() => Symbol ?? Size.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static bool operator ==(TensorDim left, TensorDim right) => left.Equals(right);

    public static bool operator !=(TensorDim left, TensorDim right) => !left.Equals(right);

    internal static TensorDim From(Dim dim) => dim.KindCase == Dim.KindOneofCase.Symbol ? Symbolic(dim.Symbol) : Fixed(dim.Fixed);
}

/// <summary>An input, output or state tensor of a kernel contract: its name, element type and shape.</summary>
public sealed class TensorContract
{
    internal TensorContract(TensorSpec spec)
    {
        Name = spec.Name;
        DType = (TensorDType)spec.Dtype;
        var shape = new TensorDim[spec.Shape.Count];
        for (var axis = 0; axis < shape.Length; axis++)
        {
            shape[axis] = TensorDim.From(spec.Shape[axis]);
        }

        Shape = shape;
        FiniteOnly = spec.FiniteOnly;
    }

    public string Name { get; }

    public TensorDType DType { get; }

    /// <summary>The dimensions, outermost first (axis 0 is the batch axis of a batchable kernel).</summary>
    public IReadOnlyList<TensorDim> Shape { get; }

    /// <summary>Whether NaN or infinite values are refused with INVALID_ARGUMENT.</summary>
    public bool FiniteOnly { get; }

    public override string ToString() => $"{Name} {DType.ToString().ToLowerInvariant()}[{string.Join(", ", Shape)}]";
}
