using Tandem.Perf.Cli;

namespace Tandem.Perf.Load;

/// <summary>
/// When each request of an open-loop step is due, as an offset from the
/// step's start: at a constant rate, at Poisson arrivals of a mean rate, or
/// at the intervals of a file (replayed in a loop). The first request is due
/// at 0. Offsets only grow; <see cref="Next"/> returns them in order.
/// </summary>
internal abstract class RequestSchedule
{
    /// <summary>Highest rate accepted (requests per second).</summary>
    public const double MaxRate = 1_000_000;

    /// <summary>The offset of the next request.</summary>
    public abstract TimeSpan Next();

    /// <summary>Like "200/s constant".</summary>
    public abstract string Describe();

    /// <summary>A request every 1/<paramref name="rate"/> seconds.</summary>
    public static RequestSchedule Constant(double rate) => new ConstantRate(CheckRate(rate));

    /// <summary>Exponentially distributed gaps of mean 1/<paramref name="rate"/>, from <paramref name="seed"/>.</summary>
    public static RequestSchedule Poisson(double rate, int seed) => new PoissonRate(CheckRate(rate), seed);

    /// <summary>The gaps of <paramref name="intervalsMicroseconds"/> in order, then again from the first.</summary>
    public static RequestSchedule Intervals(IReadOnlyList<double> intervalsMicroseconds, string source) => new ReplayedIntervals(intervalsMicroseconds, source);

    private static double CheckRate(double rate) => rate is > 0 and <= MaxRate
        ? rate
        : throw new UsageException($"--request-rate {rate}: a rate is above 0 and at most {MaxRate:N0} requests per second");

    private sealed class ConstantRate(double rate) : RequestSchedule
    {
        private long _index;

        // From the index, not a running sum, so no error accumulates over a long step.
        public override TimeSpan Next() => TimeSpan.FromSeconds(_index++ / rate);

        public override string Describe() => $"{rate:0.###}/s constant";
    }

    private sealed class PoissonRate(double rate, int seed) : RequestSchedule
    {
        private readonly Random _random = new(seed);
        private double _seconds;
        private bool _started;

        public override TimeSpan Next()
        {
            if (_started)
            {
                _seconds += -Math.Log(1 - _random.NextDouble()) / rate;
            }

            _started = true;
            return TimeSpan.FromSeconds(_seconds);
        }

        public override string Describe() => $"{rate:0.###}/s Poisson";
    }

    private sealed class ReplayedIntervals : RequestSchedule
    {
        private readonly IReadOnlyList<double> _micros;
        private readonly string _source;
        private long _index;
        private double _elapsedMicros;

        public ReplayedIntervals(IReadOnlyList<double> micros, string source)
        {
            if (micros.Count == 0)
            {
                throw new UsageException($"--request-intervals: {source} holds no interval");
            }

            _micros = micros;
            _source = source;
        }

        public override TimeSpan Next()
        {
            if (_index > 0)
            {
                _elapsedMicros += _micros[(int)((_index - 1) % _micros.Count)];
            }

            _index++;
            return TimeSpan.FromMicroseconds(_elapsedMicros);
        }

        public override string Describe() => $"intervals of {Path.GetFileName(_source)} ({_micros.Count} replayed)";
    }
}
