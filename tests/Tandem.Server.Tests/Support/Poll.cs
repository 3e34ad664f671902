namespace Tandem.Server.Tests.Support;

/// <summary>
/// Waits for a condition the server reaches on its own time (a disconnect it
/// notices, a metric its exporter publishes), checking it every
/// <c>interval</c> and failing with <see cref="OperationCanceledException"/>
/// after <c>bound</c>. For conditions with no event to await.
/// </summary>
internal static class Poll
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan bound, int intervalMs = 20)
    {
        using var timeout = new CancellationTokenSource(bound);
        while (!await condition())
        {
            await Task.Delay(intervalMs, timeout.Token);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan bound, int intervalMs = 20) =>
        UntilAsync(() => Task.FromResult(condition()), bound, intervalMs);
}
