using Microsoft.Extensions.Time.Testing;
using Tandem.Perf.Cli;
using Tandem.Perf.Load;

namespace Tandem.Perf.Tests;

public sealed class ScheduleTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public void Constant_OffsetsAreIndexOverRate()
    {
        var sut = RequestSchedule.Constant(4);

        var offsets = Enumerable.Range(0, 5).Select(_ => sut.Next()).ToArray();

        Assert.Equal([TimeSpan.Zero, TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(750), TimeSpan.FromSeconds(1)], offsets);
    }

    [Fact]
    public void Intervals_ReplayedInOrderThenLooped()
    {
        var sut = RequestSchedule.Intervals([100, 200, 700], "test");

        var offsets = Enumerable.Range(0, 6).Select(_ => sut.Next().TotalMicroseconds).ToArray();

        Assert.Equal([0.0, 100, 300, 1000, 1100, 1300], offsets);
    }

    [Fact]
    public void Poisson_SameSeedSameArrivals_MeanGapIsOneOverRate()
    {
        var (a, b) = (RequestSchedule.Poisson(1000, 5), RequestSchedule.Poisson(1000, 5));
        TimeSpan last = default;
        for (var i = 0; i < 20_000; i++)
        {
            last = a.Next();
            Assert.Equal(last, b.Next());
        }

        // 20,000 exponential gaps of mean 1 ms: the sum is within 3% of 20 s (about 4 standard deviations).
        Assert.InRange(last.TotalSeconds, 20 * 0.97, 20 * 1.03);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(2e6)]
    public void Constant_RateOutOfRange_UsageException(double rate)
    {
        var e = Assert.Throws<UsageException>(() => RequestSchedule.Constant(rate));

        Assert.Contains("--request-rate", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenLoop_FakeClock_SendsAtTheDueTimesAndNeverBefore()
    {
        var time = new FakeTimeProvider();
        var sends = new List<(long Index, long Due, long SentAt)>();
        var sent = new SemaphoreSlim(0);
        ValueTask Send(long index, long due)
        {
            lock (sends)
            {
                sends.Add((index, due, time.GetTimestamp()));
            }

            sent.Release();
            return ValueTask.CompletedTask;
        }

        var start = time.GetTimestamp();
        var run = OpenLoop.RunAsync(RequestSchedule.Constant(10), TimeSpan.FromSeconds(1), 4, time, Send, CancellationToken.None);
        Assert.True(await sent.WaitAsync(Timeout));
        for (var i = 1; i < 10; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.True(await sent.WaitAsync(Timeout), $"request {i} was not sent after {i * 100} ms");
        }

        var stats = await run.WaitAsync(Timeout);

        Assert.Equal(10, stats.Sent);
        Assert.Equal(0, stats.WaitedForSlot);
        var ordered = sends.OrderBy(s => s.Index).ToArray();
        for (var i = 0; i < ordered.Length; i++)
        {
            Assert.Equal(start + (i * time.TimestampFrequency / 10), ordered[i].Due);
            Assert.True(ordered[i].SentAt >= ordered[i].Due, $"request {i} was sent before it was due");
        }
    }

    [Fact]
    public async Task OpenLoop_AllSlotsTaken_LaterRequestsKeepTheirDueTimes()
    {
        // One slot and a first request that hangs: requests due meanwhile wait,
        // then go out together, each still carrying its own due time, so the
        // caller's latency includes the stall (no coordinated omission).
        var time = new FakeTimeProvider();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sends = new List<(long Index, long Due, long SentAt)>();
        var sent = new SemaphoreSlim(0);
        async ValueTask Send(long index, long due)
        {
            lock (sends)
            {
                sends.Add((index, due, time.GetTimestamp()));
            }

            sent.Release();
            if (index == 0)
            {
                await release.Task;
            }
        }

        var start = time.GetTimestamp();
        var run = OpenLoop.RunAsync(RequestSchedule.Constant(10), TimeSpan.FromMilliseconds(350), 1, time, Send, CancellationToken.None);
        Assert.True(await sent.WaitAsync(Timeout));
        for (var i = 0; i < 3; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
        }

        release.SetResult();
        for (var i = 1; i < 4; i++)
        {
            Assert.True(await sent.WaitAsync(Timeout), $"request {i} was never sent");
        }

        var stats = await run.WaitAsync(Timeout);

        Assert.Equal(4, stats.Sent);
        Assert.True(stats.WaitedForSlot >= 1, "the second request should have found the only slot taken");
        var ordered = sends.OrderBy(s => s.Index).ToArray();
        Assert.Equal([0L, 1, 2, 3], ordered.Select(s => (s.Due - start) * 10 / time.TimestampFrequency));
        Assert.All(ordered.Skip(1), s => Assert.Equal(start + (3 * time.TimestampFrequency / 10), s.SentAt));
        Assert.True(stats.SendLag.Max >= 200_000_000, $"the lag of request 1 (due at 100 ms, sent at 300 ms) is {stats.SendLag.Max} ns");
    }

    [Fact]
    public async Task OpenLoop_Cancelled_Throws()
    {
        var time = new FakeTimeProvider();
        using var cancel = new CancellationTokenSource();
        var run = OpenLoop.RunAsync(RequestSchedule.Constant(1), TimeSpan.FromSeconds(60), 1, time, (_, _) => ValueTask.CompletedTask, cancel.Token);

        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Timeout));
    }
}
