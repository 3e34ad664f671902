using System.Globalization;
using Tandem.Kernels;

namespace Tandem.Testing;

/// <summary>
/// The comparison the kit's tests use, for tests of your own: outputs of
/// two calls (the managed twin's and a backend's) must have the same shapes
/// and, element by element, agree within a <see cref="Tolerance"/>.
/// </summary>
public static class KernelResultAssert
{
    /// <summary>Fails, naming the first differing element of the first differing output, when <paramref name="actual"/> differs from <paramref name="expected"/>.</summary>
    /// <param name="expected">The reference result (usually the managed twin's).</param>
    /// <param name="actual">The result under test.</param>
    /// <param name="tolerance">The tolerance per output; null compares every output bitwise.</param>
    /// <param name="context">What was compared (kernel, backend, case), put in front of the message.</param>
    /// <exception cref="Xunit.Sdk.XunitException">The results differ.</exception>
    public static void Equal(KernelResult expected, KernelResult actual, Func<TensorContract, Tolerance>? tolerance = null, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(expected);
        ArgumentNullException.ThrowIfNull(actual);
        if (FirstDifference(expected, actual, tolerance) is { } difference)
        {
            Assert.Fail(context is null ? difference : $"{context}:\n{difference}");
        }
    }

    /// <summary>The first difference between two results, or null when they agree.</summary>
    internal static string? FirstDifference(KernelResult expected, KernelResult actual, Func<TensorContract, Tolerance>? tolerance)
    {
        if (expected.OutputCount != actual.OutputCount)
        {
            return $"expected {expected.OutputCount} output(s), got {actual.OutputCount}";
        }

        for (var o = 0; o < expected.OutputCount; o++)
        {
            var contract = expected.Contract.Outputs[o];
            if (FirstDifference(OutputOf(expected, o), OutputOf(actual, o), tolerance?.Invoke(contract) ?? Tolerance.Bitwise) is { } difference)
            {
                return difference;
            }
        }

        return null;
    }

    /// <summary>The first difference between two tensors, or null when they agree.</summary>
    internal static string? FirstDifference(TensorData expected, TensorData actual, Tolerance tolerance)
    {
        var what = $"output '{expected.Name}'";
        if (!expected.Shape.SequenceEqual(actual.Shape) || expected.DType != actual.DType)
        {
            return $"{what}: expected {TensorData.Lower(expected.DType)}[{string.Join(", ", expected.Shape)}], got {TensorData.Lower(actual.DType)}[{string.Join(", ", actual.Shape)}]";
        }

        var first = -1L;
        var differing = 0L;
        for (var i = 0L; i < expected.Data.Length; i++)
        {
            if (!Agrees(expected.Data, actual.Data, i, tolerance))
            {
                differing++;
                first = first < 0 ? i : first;
            }
        }

        if (first < 0)
        {
            return null;
        }

        return $"output {expected} differs at element {first} (index [{string.Join(", ", IndexOf(first, expected.Shape))}]): expected {Show(expected.Data, first)}, got {Show(actual.Data, first)}; "
            + $"{differing} of {expected.Data.Length} element(s) differ (tolerance: {(expected.DType is TensorDType.F32 or TensorDType.F64 ? tolerance.Description : "exact")})";
    }

    /// <summary>Output <paramref name="index"/> of a result as a tensor (a copy).</summary>
    internal static TensorData OutputOf(KernelResult result, int index)
    {
        var contract = result.Contract.Outputs[index];
        Array data = contract.DType switch
        {
            TensorDType.U8 => result.Output<byte>(index).ToArray(),
            TensorDType.I32 => result.Output<int>(index).ToArray(),
            TensorDType.I64 => result.Output<long>(index).ToArray(),
            TensorDType.F32 => result.Output<float>(index).ToArray(),
            _ => result.Output<double>(index).ToArray(),
        };
        return new TensorData(contract.Name, contract.DType, result.ShapeOf(index), data);
    }

    private static bool Agrees(Array expected, Array actual, long i, Tolerance tolerance) => (expected, actual) switch
    {
        (float[] e, float[] a) => tolerance.Accepts(e[i], a[i], single: true),
        (double[] e, double[] a) => tolerance.Accepts(e[i], a[i], single: false),
        (byte[] e, byte[] a) => e[i] == a[i],
        (int[] e, int[] a) => e[i] == a[i],
        (long[] e, long[] a) => e[i] == a[i],
        _ => false,
    };

    private static string Show(Array data, long i) => data switch
    {
        float[] f => string.Create(CultureInfo.InvariantCulture, $"{f[i]:R} (0x{BitConverter.SingleToInt32Bits(f[i]):X8})"),
        double[] d => string.Create(CultureInfo.InvariantCulture, $"{d[i]:R} (0x{BitConverter.DoubleToInt64Bits(d[i]):X16})"),
        _ => Convert.ToString(data.GetValue(i), CultureInfo.InvariantCulture) ?? "?",
    };

    private static long[] IndexOf(long flat, IReadOnlyList<long> shape)
    {
        var index = new long[shape.Count];
        for (var axis = shape.Count - 1; axis >= 0; axis--)
        {
            index[axis] = shape[axis] == 0 ? 0 : flat % shape[axis];
            flat = shape[axis] == 0 ? 0 : flat / shape[axis];
        }

        return index;
    }
}
