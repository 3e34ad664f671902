using Tandem.Internal.Resilience;

namespace Tandem.Tests.Resilience;

/// <summary>
/// The circuit breaker's rules on explicit timestamps (1 tick = 1 ms here):
/// a failure ratio over a sliding window once the minimum throughput is
/// reached, a break, then exactly one probe whose outcome decides.
/// </summary>
public sealed class CircuitBreakerTests
{
    private const long Frequency = 1000;

    private static readonly ResilienceOptions Settings = new()
    {
        BreakerFailureRatio = 0.5,
        BreakerMinimumThroughput = 10,
        BreakerSamplingDuration = TimeSpan.FromSeconds(10),
        BreakerBreakDuration = TimeSpan.FromSeconds(5),
    };

    [Fact]
    public void Complete_FailuresAtTheRatioOnceThroughputIsReached_Opens()
    {
        var sut = new CircuitBreaker(Settings, Frequency);

        Record(sut, now: 1_000, successes: 5, failures: 4);
        Assert.True(sut.IsClosed);
        Record(sut, now: 1_000, successes: 0, failures: 1);

        Assert.False(sut.IsClosed);
        Assert.False(sut.TryEnter(1_001, out _));
    }

    [Fact]
    public void Complete_BelowTheMinimumThroughput_StaysClosedEvenIfEveryCallFails()
    {
        var sut = new CircuitBreaker(Settings, Frequency);

        Record(sut, now: 1_000, successes: 0, failures: 9);

        Assert.True(sut.IsClosed);
    }

    [Fact]
    public void Complete_BelowTheRatio_StaysClosed()
    {
        var sut = new CircuitBreaker(Settings, Frequency);

        Record(sut, now: 1_000, successes: 60, failures: 59);

        Assert.True(sut.IsClosed);
    }

    [Fact]
    public void Complete_FailuresOlderThanTheSamplingDuration_NoLongerCount()
    {
        var sut = new CircuitBreaker(Settings, Frequency);
        Record(sut, now: 1_000, successes: 0, failures: 9);

        // 11 s later the window holds only the new outcomes: 1 failure in 10 calls.
        Record(sut, now: 12_000, successes: 9, failures: 1);

        Assert.True(sut.IsClosed);
    }

    [Fact]
    public void Complete_FailuresWithinTheWindowAcrossItsSlices_AddUp()
    {
        var sut = new CircuitBreaker(Settings, Frequency);
        for (var second = 0; second < 9; second++)
        {
            Record(sut, now: 1_000 + (second * 1_000), successes: 0, failures: 1);
            Assert.True(sut.IsClosed);
        }

        Record(sut, now: 9_500, successes: 0, failures: 1);

        Assert.False(sut.IsClosed);
    }

    [Fact]
    public void TryEnter_AfterTheBreak_LetsExactlyOneProbeThrough()
    {
        var sut = Opened(at: 1_000);

        Assert.False(sut.TryEnter(5_999, out _));
        Assert.True(sut.TryEnter(6_000, out var probe));
        Assert.True(probe);
        Assert.False(sut.TryEnter(6_001, out _));
        Assert.False(sut.TryEnter(60_000, out _));
    }

    [Fact]
    public void Complete_ProbeSucceeds_ClosesWithAFreshWindow()
    {
        var sut = Opened(at: 1_000);
        Assert.True(sut.TryEnter(6_000, out var probe));

        sut.Complete(6_000, probe, failed: false);

        Assert.True(sut.IsClosed);
        Assert.True(sut.TryEnter(6_001, out var next));
        Assert.False(next);
        // The failures before the break are forgotten: 9 new ones stay under the minimum throughput.
        Record(sut, now: 6_002, successes: 0, failures: 9);
        Assert.True(sut.IsClosed);
    }

    [Fact]
    public void Complete_ProbeFails_ReopensForAnotherBreak()
    {
        var sut = Opened(at: 1_000);
        Assert.True(sut.TryEnter(6_000, out var probe));

        sut.Complete(6_100, probe, failed: true);

        Assert.False(sut.IsClosed);
        Assert.False(sut.TryEnter(11_099, out _));
        Assert.True(sut.TryEnter(11_100, out var second));
        Assert.True(second);
    }

    [Fact]
    public void Complete_ManyThreadsAtOnce_SuccessesAreNotLost()
    {
        // 8 threads × 5,000 successes: 39,999 failures after them stay under
        // half, the 40,000th reaches it, exactly when every success counted.
        var sut = new CircuitBreaker(new ResilienceOptions { BreakerFailureRatio = 0.5, BreakerMinimumThroughput = 10, BreakerSamplingDuration = TimeSpan.FromSeconds(10), BreakerBreakDuration = TimeSpan.FromSeconds(5) }, Frequency);

        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 5_000; i++)
            {
                Assert.True(sut.TryEnter(1_000, out var probe));
                sut.Complete(1_000, probe, failed: false);
            }
        });
        Record(sut, now: 1_000, successes: 0, failures: 39_999);
        Assert.True(sut.IsClosed);
        Record(sut, now: 1_000, successes: 0, failures: 1);

        Assert.False(sut.IsClosed);
    }

    [Theory]
    [InlineData(TandemStatusCode.Internal, true)]
    [InlineData(TandemStatusCode.Unavailable, true)]
    [InlineData(TandemStatusCode.InvalidArgument, false)]
    [InlineData(TandemStatusCode.ResourceExhausted, false)]
    [InlineData(TandemStatusCode.DeadlineExceeded, false)]
    [InlineData(TandemStatusCode.Cancelled, false)]
    public void Counts_OnlyCodesThatSayTheBackendIsUnwell(TandemStatusCode code, bool counts)
    {
        Assert.Equal(counts, CircuitBreaker.Counts(new TandemException(code, "x")));
        Assert.False(CircuitBreaker.Counts(new InvalidOperationException()));
        Assert.False(CircuitBreaker.Counts(null));
    }

    private static CircuitBreaker Opened(long at)
    {
        var sut = new CircuitBreaker(Settings, Frequency);
        Record(sut, at, successes: 0, failures: 10);
        Assert.False(sut.IsClosed);
        return sut;
    }

    private static void Record(CircuitBreaker sut, long now, int successes, int failures)
    {
        for (var i = 0; i < successes; i++)
        {
            Assert.True(sut.TryEnter(now, out var probe));
            sut.Complete(now, probe, failed: false);
        }

        for (var i = 0; i < failures; i++)
        {
            Assert.True(sut.TryEnter(now, out var probe));
            sut.Complete(now, probe, failed: true);
        }
    }
}
