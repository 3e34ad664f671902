namespace Tandem.Perf.Load;

/// <summary>
/// A fixed-size log-linear histogram of non-negative durations in
/// nanoseconds, in the manner of HdrHistogram: values below 256 ns are exact,
/// every power of two above is split into 128 equal sub-buckets, so a
/// reported percentile is within 1/128 (0.8%) of a recorded value. Memory is
/// fixed (7,296 counters) whatever is recorded; min, max, sum and count are
/// exact. Not thread-safe: one recorder per thread, merged with <see cref="Add"/>.
/// </summary>
internal sealed class LatencyHistogram
{
    /// <summary>Sub-buckets per power of two (the precision: 1/128).</summary>
    internal const int SubBuckets = 128;

    private const int SubBucketBits = 7;

    /// <summary>Values below this are counted exactly (one bucket each).</summary>
    private const long ExactBelow = 2 * SubBuckets;

    private readonly long[] _counts = new long[(64 - SubBucketBits) * SubBuckets];

    public long Count { get; private set; }

    /// <summary>Exact sum of the recorded values (ns); saturates instead of wrapping.</summary>
    public double Sum { get; private set; }

    /// <summary>Smallest recorded value (ns), or 0 when empty.</summary>
    public long Min { get; private set; }

    /// <summary>Largest recorded value (ns), or 0 when empty.</summary>
    public long Max { get; private set; }

    public double Mean => Count == 0 ? double.NaN : Sum / Count;

    /// <summary>Records one value; a negative one (a clock step backwards) counts as 0.</summary>
    public void Record(long nanoseconds)
    {
        var value = Math.Max(0, nanoseconds);
        _counts[IndexOf(value)]++;
        Min = Count == 0 ? value : Math.Min(Min, value);
        Max = Math.Max(Max, value);
        Sum += value;
        Count++;
    }

    /// <summary>Adds every value of <paramref name="other"/>.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Count == 0)
        {
            return;
        }

        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }

        Min = Count == 0 ? other.Min : Math.Min(Min, other.Min);
        Max = Math.Max(Max, other.Max);
        Sum += other.Sum;
        Count += other.Count;
    }

    /// <summary>
    /// The value at <paramref name="percentile"/> (0 to 100) by nearest rank:
    /// the smallest recorded value such that at least that share of the
    /// values are at or below it, reported as the midpoint of its bucket
    /// (clamped to the exact min and max); 0 is the exact min, the last rank
    /// the exact max. NaN when empty.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The percentile is outside 0 to 100.</exception>
    public double Percentile(double percentile)
    {
        if (percentile is < 0 or > 100 || double.IsNaN(percentile))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "a percentile is 0 to 100");
        }

        if (Count == 0)
        {
            return double.NaN;
        }

        if (percentile == 0)
        {
            return Min;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100 * Count));
        if (rank >= Count)
        {
            return Max;
        }

        var seen = 0L;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                var (low, high) = BoundsOf(i);
                return Math.Clamp((low + high) / 2.0, Min, Max);
            }
        }

        return Max;
    }

    /// <summary>The bucket of <paramref name="value"/>.</summary>
    internal static int IndexOf(long value)
    {
        if (value < ExactBelow)
        {
            return (int)value;
        }

        // value in [2^e, 2^(e+1)), e >= 8: 128 sub-buckets of width 2^(e-7),
        // after the 256 exact ones (so 2^8 starts group 2).
        var exponent = 63 - (int)long.LeadingZeroCount(value);
        var sub = (int)((value >> (exponent - SubBucketBits)) - SubBuckets);
        return ((exponent - SubBucketBits + 1) * SubBuckets) + sub;
    }

    /// <summary>The smallest and largest value bucket <paramref name="index"/> holds.</summary>
    internal static (long Low, long High) BoundsOf(int index)
    {
        if (index < ExactBelow)
        {
            return (index, index);
        }

        var exponent = (index / SubBuckets) + SubBucketBits - 1;
        var sub = index % SubBuckets;
        var width = 1L << (exponent - SubBucketBits);
        var low = (1L << exponent) + (sub * width);
        return (low, low + width - 1);
    }
}
