namespace Tandem.Internal.Dispatch;

/// <summary>
/// Bounds the batches (or unbatched calls) of one kernel running at once.
/// The limit is read on every acquire, so an options change applies to the
/// next batch without disturbing running ones.
/// </summary>
internal sealed class InFlightGate
{
    private readonly Queue<TaskCompletionSource> _waiters = new();
    private int _running;

    public int Running => Volatile.Read(ref _running);

    public ValueTask AcquireAsync(int limit, CancellationToken cancellationToken)
    {
        TaskCompletionSource waiter;
        lock (_waiters)
        {
            if (_running < limit)
            {
                _running++;
                return ValueTask.CompletedTask;
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(waiter);
        }

        return new ValueTask(Wait(waiter, cancellationToken));
    }

    public void Release()
    {
        lock (_waiters)
        {
            // Hand the slot straight to a waiter that has not given up.
            while (_waiters.TryDequeue(out var waiter))
            {
                if (waiter.TrySetResult())
                {
                    return;
                }
            }

            _running--;
        }
    }

    private async Task Wait(TaskCompletionSource waiter, CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            await waiter.Task.ConfigureAwait(false);
            return;
        }

        await using var registration = cancellationToken.UnsafeRegister(static w => ((TaskCompletionSource)w!).TrySetCanceled(), waiter);
        await waiter.Task.ConfigureAwait(false);
    }
}
