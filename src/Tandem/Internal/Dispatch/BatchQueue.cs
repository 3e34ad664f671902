using System.Diagnostics;
using Tandem.Internal.Kernels;
using Tandem.Internal.Telemetry;

namespace Tandem.Internal.Dispatch;

/// <summary>
/// The waiting calls of one kernel that can share a batch (same backend,
/// state and parameters), and the loop that forms batches from them: a batch
/// runs when it reaches <see cref="BatchingOptions.MaxBatchRows"/> or its
/// oldest call has waited <see cref="BatchingOptions.MaxQueueDelay"/>, and
/// only when the kernel's in-flight gate has room — so while the backend is
/// busy, queued calls keep joining the next batch instead of being capped.
/// The loop runs while calls wait; when a batch takes the last of them the
/// queue retires for good (it takes no more calls and leaves the
/// dispatcher), so idle queues, and the states their keys name, are released.
/// </summary>
internal sealed class BatchQueue(BatchKey key, InFlightGate gate, TimeProvider time, Func<BatchingOptions> options, TandemTelemetry telemetry, KernelDispatcher.Executor execute, Action<BatchQueue> retired)
{
    private readonly Queue<PendingCall> _items = new();
    private readonly Lock _lock = new();
    private readonly IKernelBackend _backend = key.Backend;
    // Created only when the loop waits for the queue delay.
    private TaskCompletionSource? _full;
    private int _rows;
    private bool _looping;
    private bool _retired;

    public BatchKey Key { get; } = key;

    /// <summary>
    /// Adds a call, or returns false when the queue has retired: the caller
    /// then looks up (or adds) the key's current queue and tries again.
    /// </summary>
    public bool TryEnqueue(PendingCall call)
    {
        var settings = options();
        var start = false;
        lock (_lock)
        {
            if (_retired)
            {
                return false;
            }

            _items.Enqueue(call);
            _rows += call.Rows;
            if (Ready(_rows, settings) > 0)
            {
                _full?.TrySetResult();
            }

            if (!_looping)
            {
                _looping = start = true;
            }
        }

        if (start)
        {
            _ = Task.Run(LoopAsync);
        }

        return true;
    }

    private async Task LoopAsync()
    {
        // The queue holds calls whenever this loop is at the top: it ends only
        // when a batch takes the last one, and the queue retires with it.
        while (true)
        {
            var settings = options();
            TimeSpan wait;
            long oldest;
            Task? full = null;
            lock (_lock)
            {
                oldest = _items.Peek().EnqueuedAt;
                wait = settings.MaxQueueDelay - time.GetElapsedTime(oldest);
                if (Ready(_rows, settings) == 0 && wait > TimeSpan.Zero)
                {
                    if (_full is null || _full.Task.IsCompleted)
                    {
                        _full = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    full = _full.Task;
                }
            }

            if (full is not null)
            {
                var delay = Task.Delay(wait, time);
                // The clock may have moved between reading it and arming the
                // timer (a descheduled thread; a fake clock advanced in a test):
                // read it again, so the wait never outlasts the queue delay.
                if (settings.MaxQueueDelay > time.GetElapsedTime(oldest))
                {
                    await Task.WhenAny(delay, full).ConfigureAwait(false);
                }
            }

            await gate.AcquireAsync(settings.MaxInFlight, CancellationToken.None).ConfigureAwait(false);
            int limit;
            lock (_lock)
            {
                // A preferred size that is ready caps the batch at that size.
                limit = Ready(_rows, settings) is var ready and > 0 ? ready : settings.MaxBatchRows;
            }

            var members = Take(limit, out var drained);
            if (members.Count == 0)
            {
                gate.Release();
            }
            else
            {
                _ = RunAsync(members);
            }

            if (drained)
            {
                return;
            }
        }
    }

    /// <summary>The batch size that may run now without waiting: MaxBatchRows when reached, else the largest preferred size reached, else 0.</summary>
    private static int Ready(int rows, BatchingOptions settings)
    {
        if (rows >= settings.MaxBatchRows)
        {
            return settings.MaxBatchRows;
        }

        var best = 0;
        foreach (var preferred in settings.PreferredBatchRows)
        {
            if (preferred <= rows && preferred > best)
            {
                best = preferred;
            }
        }

        return best;
    }

    /// <summary>
    /// Takes calls in order up to <paramref name="maxRows"/> and the kernel's
    /// work bound (so a merged batch never asks for more work than one call
    /// may; the next batch takes the rest), completing
    /// expired ones with DEADLINE_EXCEEDED. When none are left the queue
    /// retires, before any call it held completes, so a caller that sees its
    /// call done never finds the queue still in the dispatcher.
    /// </summary>
    private List<PendingCall> Take(int maxRows, out bool drained)
    {
        var members = new List<PendingCall>();
        List<PendingCall>? expired = null;
        var rows = 0;
        var work = 0UL;
        var now = time.GetTimestamp();
        lock (_lock)
        {
            var maxWork = _items.TryPeek(out var first) ? CallWork.BatchLimit(first.Call.Descriptor) : ulong.MaxValue;
            while (_items.TryPeek(out var next) && (members.Count == 0 || (rows + next.Rows <= maxRows && work + next.Work <= maxWork)))
            {
                _items.Dequeue();
                _rows -= next.Rows;
                if (next.Deadline is { } deadline && now >= deadline)
                {
                    (expired ??= []).Add(next);
                    continue;
                }

                if (next.TryMove(PendingCall.Queued, PendingCall.Copying))
                {
                    members.Add(next);
                    rows += next.Rows;
                    work += next.Work;
                }
            }

            drained = _retired = _items.Count == 0;
        }

        if (drained)
        {
            retired(this);
        }

        if (expired is not null)
        {
            foreach (var late in expired)
            {
                if (late.TryMove(PendingCall.Queued, PendingCall.Done))
                {
                    late.Fail(new TandemException(TandemStatusCode.DeadlineExceeded, "the call's deadline (Tandem:CallTimeout) passed while it waited in the queue; it was not run", late.Call.Kernel));
                }
            }
        }

        return members;
    }

    private async Task RunAsync(List<PendingCall> members)
    {
        var kernel = members[0].Call.Kernel;
        var links = new ActivityLink[members.Count];
        var rows = 0L;
        var started = time.GetTimestamp();
        for (var i = 0; i < members.Count; i++)
        {
            links[i] = new ActivityLink(members[i].Span);
            rows += members[i].Rows;
            telemetry.QueueDuration.Record(time.GetElapsedTime(members[i].EnqueuedAt, started).TotalSeconds, new KeyValuePair<string, object?>("kernel", kernel));
        }

        using var span = TandemTelemetry.Source.StartActivity("tandem.batch", ActivityKind.Internal, parentContext: default, links: links);
        span?.SetTag("tandem.kernel", kernel);
        span?.SetTag("tandem.batch.rows", rows);
        telemetry.BatchSize.Record(rows, new KeyValuePair<string, object?>("kernel", kernel));
        try
        {
            if (members.Count == 1)
            {
                await RunAloneAsync(members[0]).ConfigureAwait(false);
            }
            else
            {
                await RunMergedAsync(members).ConfigureAwait(false);
            }
        }
        finally
        {
            gate.Release();
            telemetry.ComputeDuration.Record(time.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("kernel", kernel));
        }
    }

    private async Task RunAloneAsync(PendingCall member)
    {
        // No copies: the kernel works on the caller's own buffers and sees
        // the caller's own cancellation.
        member.TryMove(PendingCall.Copying, PendingCall.RunningAlone);
        try
        {
            await execute(_backend, member.Call, member.Token).ConfigureAwait(false);
            member.Succeed();
        }
        catch (Exception exception)
        {
            member.Fail(exception);
        }
    }

    private async Task RunMergedAsync(List<PendingCall> members)
    {
        RowMerge? merge = null;
        try
        {
            merge = new RowMerge(members);
        }
        catch (Exception exception)
        {
            foreach (var member in members)
            {
                member.Fail(exception);
            }

            return;
        }

        using (merge)
        {
            foreach (var member in members)
            {
                member.TryMove(PendingCall.Copying, PendingCall.Running);
            }

            try
            {
                // One caller's cancellation never cancels its batch mates.
                await execute(_backend, merge.Merged, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                foreach (var member in members)
                {
                    if (member.TryMove(PendingCall.Running, PendingCall.Done))
                    {
                        member.Fail(exception);
                    }
                }

                return;
            }

            for (var i = 0; i < members.Count; i++)
            {
                if (members[i].TryMove(PendingCall.Running, PendingCall.Copying))
                {
                    merge.CopyOut(i);
                    members[i].Succeed();
                }
            }
        }
    }
}
