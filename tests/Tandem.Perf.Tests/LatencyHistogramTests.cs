using Tandem.Perf.Load;

namespace Tandem.Perf.Tests;

public sealed class LatencyHistogramTests
{
    [Fact]
    public void Percentile_Empty_NaN()
    {
        var sut = new LatencyHistogram();

        Assert.True(double.IsNaN(sut.Percentile(50)));
        Assert.Equal(0, sut.Count);
    }

    [Fact]
    public void Percentile_SmallValues_Exact()
    {
        var sut = new LatencyHistogram();
        for (var v = 1; v <= 100; v++)
        {
            sut.Record(v);
        }

        Assert.Equal(50, sut.Percentile(50));
        Assert.Equal(99, sut.Percentile(99));
        Assert.Equal(100, sut.Percentile(100));
        Assert.Equal(1, sut.Percentile(0));
        Assert.Equal(50.5, sut.Mean);
    }

    [Fact]
    public void Percentile_MicrosecondsToSeconds_WithinOnePercentOfNearestRank()
    {
        var sut = new LatencyHistogram();
        var values = new List<long>();
        var random = new Random(3);
        for (var i = 0; i < 20_000; i++)
        {
            // Log-uniform from 1 µs to 10 s, as latencies spread.
            var value = (long)Math.Pow(10, 3 + (random.NextDouble() * 7));
            values.Add(value);
            sut.Record(value);
        }

        values.Sort();
        foreach (var p in new[] { 1.0, 50, 90, 95, 99, 99.9 })
        {
            var expected = values[(int)Math.Ceiling(p / 100 * values.Count) - 1];
            var actual = sut.Percentile(p);
            Assert.InRange(actual, expected * (1 - (1.0 / LatencyHistogram.SubBuckets)), expected * (1 + (1.0 / LatencyHistogram.SubBuckets)));
        }

        Assert.Equal(values[^1], sut.Percentile(100));
        Assert.Equal(values[^1], sut.Max);
        Assert.Equal(values[0], sut.Min);
    }

    [Fact]
    public void Add_TwoRecorders_SameAsOne()
    {
        var (a, b, both) = (new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram());
        for (var v = 1L; v < 5_000_000; v = (v * 3) + 1)
        {
            (v % 2 == 0 ? a : b).Record(v);
            both.Record(v);
        }

        a.Add(b);

        Assert.Equal(both.Count, a.Count);
        Assert.Equal(both.Min, a.Min);
        Assert.Equal(both.Max, a.Max);
        Assert.Equal(both.Sum, a.Sum);
        foreach (var p in new[] { 10.0, 50, 99 })
        {
            Assert.Equal(both.Percentile(p), a.Percentile(p));
        }
    }

    [Fact]
    public void Record_Negative_CountsAsZero()
    {
        var sut = new LatencyHistogram();

        sut.Record(-5);

        Assert.Equal(0, sut.Max);
        Assert.Equal(0, sut.Percentile(50));
    }

    [Fact]
    public void IndexOf_EveryBucket_HoldsItsValueAndGrowsWithIt()
    {
        var random = new Random(11);
        var previous = -1;
        for (var value = 0L; value < long.MaxValue / 3; value += (value / 4) + 1 + random.Next(3))
        {
            var index = LatencyHistogram.IndexOf(value);
            var (low, high) = LatencyHistogram.BoundsOf(index);

            Assert.InRange(value, low, high);
            Assert.True(index >= previous, $"bucket of {value} ({index}) is below the previous value's ({previous})");
            Assert.True(high - low <= Math.Max(0, low / LatencyHistogram.SubBuckets), $"bucket {index} [{low}, {high}] is wider than 1/{LatencyHistogram.SubBuckets} of its values");
            previous = index;
        }

        Assert.InRange(long.MaxValue, LatencyHistogram.BoundsOf(LatencyHistogram.IndexOf(long.MaxValue)).Low, long.MaxValue);
    }

    [Fact]
    public void Percentile_OutOfRange_Throws()
    {
        var sut = new LatencyHistogram();

        Assert.Throws<ArgumentOutOfRangeException>(() => sut.Percentile(101));
        Assert.Throws<ArgumentOutOfRangeException>(() => sut.Percentile(-1));
    }
}
