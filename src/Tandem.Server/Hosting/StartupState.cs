namespace Tandem.Server.Hosting;

/// <summary>Whether startup work (the worker pool, the demo collection and its warm-up) is done; /readyz waits for it.</summary>
internal sealed class StartupState
{
    private readonly TaskCompletionSource<string?> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsDone => _done.Task.IsCompleted;

    /// <summary>What failed during startup, or null.</summary>
    public string? Failure => _done.Task.IsCompleted ? _done.Task.Result : null;

    public Task Done => _done.Task;

    public void Complete(string? failure = null) => _done.TrySetResult(failure);
}
