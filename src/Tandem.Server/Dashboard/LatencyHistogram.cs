namespace Tandem.Server.Dashboard;

/// <summary>
/// A lock-free log-bucketed histogram of milliseconds (buckets 10% wide from
/// 1 µs to about 2 minutes) for quantiles within 10%; recording is one
/// interlocked increment, so it can sit on every kernel call.
/// </summary>
internal sealed class LatencyHistogram
{
    private const double Smallest = 0.001;
    private const double Growth = 1.1;
    private const int Buckets = 196;
    private static readonly double LogGrowth = Math.Log(Growth);
    private readonly long[] _counts = new long[Buckets];
    private long _count;

    public long Count => Interlocked.Read(ref _count);

    public void Record(double milliseconds)
    {
        var index = milliseconds <= Smallest ? 0 : Math.Min(Buckets - 1, (int)Math.Ceiling(Math.Log(milliseconds / Smallest) / LogGrowth));
        Interlocked.Increment(ref _counts[index]);
        Interlocked.Increment(ref _count);
    }

    /// <summary>The upper bound of the bucket holding quantile <paramref name="q"/>, or 0 when empty.</summary>
    public double Quantile(double q)
    {
        var total = Count;
        if (total == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(q * total));
        long seen = 0;
        for (var i = 0; i < Buckets; i++)
        {
            seen += Interlocked.Read(ref _counts[i]);
            if (seen >= rank)
            {
                return Math.Round(Smallest * Math.Pow(Growth, i), 4);
            }
        }

        return Math.Round(Smallest * Math.Pow(Growth, Buckets - 1), 4);
    }
}
