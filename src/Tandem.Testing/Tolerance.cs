using System.Globalization;

namespace Tandem.Testing;

/// <summary>
/// How close a floating-point output of the backend must be to the managed
/// twin's. Integer and byte outputs are always compared exactly.
/// </summary>
public sealed class Tolerance
{
    private Tolerance(string description, long ulps, double relative, double absolute)
    {
        Description = description;
        MaxUlps = ulps;
        RelativeError = relative;
        AbsoluteError = absolute;
    }

    /// <summary>The same bits (so -0 differs from +0): what a deterministic kernel and its twin must agree on.</summary>
    public static Tolerance Bitwise { get; } = new("bitwise", 0, 0, 0);

    /// <summary>At most <paramref name="ulps"/> representable values apart (NaN equals NaN).</summary>
    public static Tolerance Ulps(long ulps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ulps);
        return new($"{ulps} ulp(s)", ulps, -1, -1);
    }

    /// <summary>|expected − actual| ≤ <paramref name="absolute"/> + <paramref name="relative"/> · max(|expected|, |actual|) (NaN equals NaN).</summary>
    public static Tolerance Relative(double relative, double absolute = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(relative);
        ArgumentOutOfRangeException.ThrowIfNegative(absolute);
        return new(
            string.Create(CultureInfo.InvariantCulture, $"relative {relative:R}, absolute {absolute:R}"),
            -1,
            relative,
            absolute);
    }

    /// <summary>How the tolerance reads in a failure message.</summary>
    public string Description { get; }

    private long MaxUlps { get; }

    private double RelativeError { get; }

    private double AbsoluteError { get; }

    /// <inheritdoc/>
    public override string ToString() => Description;

    internal bool Accepts(double expected, double actual, bool single)
    {
        if (MaxUlps == 0 && RelativeError == 0)
        {
            return single
                ? BitConverter.SingleToInt32Bits((float)expected) == BitConverter.SingleToInt32Bits((float)actual)
                : BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual);
        }

        if (double.IsNaN(expected) || double.IsNaN(actual))
        {
            return double.IsNaN(expected) && double.IsNaN(actual);
        }

        if (MaxUlps >= 0)
        {
            return single
                ? Math.Abs((long)Ordered((float)expected) - Ordered((float)actual)) <= MaxUlps
                : UlpDistance(expected, actual) <= (ulong)MaxUlps;
        }

        if (double.IsInfinity(expected) || double.IsInfinity(actual))
        {
            return expected == actual;
        }

        return Math.Abs(expected - actual) <= AbsoluteError + (RelativeError * Math.Max(Math.Abs(expected), Math.Abs(actual)));
    }

    /// <summary>Float bits mapped so that adjacent values are adjacent integers (−0 and +0 both 0).</summary>
    private static int Ordered(float value)
    {
        var bits = BitConverter.SingleToInt32Bits(value);
        return bits < 0 ? int.MinValue - bits : bits;
    }

    private static ulong UlpDistance(double expected, double actual)
    {
        static long Ordered(double value)
        {
            var bits = BitConverter.DoubleToInt64Bits(value);
            return bits < 0 ? long.MinValue - bits : bits;
        }

        var (a, b) = (Ordered(expected), Ordered(actual));
        return a >= b ? (ulong)a - (ulong)b : (ulong)b - (ulong)a;
    }
}
