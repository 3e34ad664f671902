namespace Tandem.Perf.Load;

/// <summary>
/// Sends requests at the times a <see cref="RequestSchedule"/> says, whether
/// or not earlier ones have finished (open loop), with at most
/// <c>maxOutstanding</c> in flight. A request that cannot be sent on time —
/// the sender woke late, or every slot was taken — is sent as soon as it can
/// be, and keeps its due time: the caller measures latency from that due
/// time, so a stall of the system under test shows in the latencies instead
/// of silently thinning the load (no coordinated omission).
/// </summary>
internal static class OpenLoop
{
    /// <summary>
    /// Runs the schedule for <paramref name="duration"/>: <paramref name="send"/>
    /// gets each request's index and due timestamp (<paramref name="time"/>'s
    /// <see cref="TimeProvider.GetTimestamp"/> units) and must not throw.
    /// Returns when every request sent has completed, or throws
    /// <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/>
    /// ends the wait first.
    /// </summary>
    public static async Task<OpenLoopStats> RunAsync(
        RequestSchedule schedule,
        TimeSpan duration,
        int maxOutstanding,
        TimeProvider time,
        Func<long, long, ValueTask> send,
        CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxOutstanding, 1);
        var stats = new OpenLoopStats();
        using var slots = new SemaphoreSlim(maxOutstanding, maxOutstanding);
        var start = time.GetTimestamp();
        for (long index = 0; ; index++)
        {
            var offset = schedule.Next();
            if (offset >= duration)
            {
                break;
            }

            var due = start + (long)(offset.TotalSeconds * time.TimestampFrequency);
            var wait = time.GetElapsedTime(time.GetTimestamp(), due);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            }

            if (!slots.Wait(0))
            {
                stats.WaitedForSlot++;
                await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            var now = time.GetTimestamp();
            stats.SendLag.Record((long)((now - due) * 1e9 / time.TimestampFrequency));
            stats.Sent++;
            // On the thread pool: a kernel call that runs synchronously on its
            // caller's thread must not hold up the next send.
            var (sentIndex, sentDue) = (index, due);
            _ = Task.Run(() => SendAsync(sentIndex, sentDue), CancellationToken.None);
        }

        // Every slot back means every request sent has completed.
        for (var i = 0; i < maxOutstanding; i++)
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        return stats;

        async Task SendAsync(long index, long due)
        {
            try
            {
                await send(index, due).ConfigureAwait(false);
            }
            finally
            {
                slots.Release();
            }
        }
    }
}

/// <summary>What an open-loop run did besides sending: how late sends were and how often every slot was taken.</summary>
internal sealed class OpenLoopStats
{
    /// <summary>Requests sent.</summary>
    public long Sent { get; set; }

    /// <summary>Sends that found every slot taken (<c>--max-outstanding</c>) and waited for one.</summary>
    public long WaitedForSlot { get; set; }

    /// <summary>Send time minus due time (ns), over every request.</summary>
    public LatencyHistogram SendLag { get; } = new();
}
