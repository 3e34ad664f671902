namespace Tandem.Internal.Native;

/// <summary>
/// One library in service (current) or draining after a hot swap. What was
/// built in it and outlives a call (native state handles, open streams) holds
/// it; being current counts as one more hold. When the last hold is returned
/// the generation has drained: nothing of it is in use. Its code stays mapped
/// (see <see cref="NativeLibraryBinding.Load"/>), so a call that read it just
/// before a swap still completes on it.
/// </summary>
internal sealed class NativeGeneration(NativeRuntime runtime, string? sourcePath, long number, DateTimeOffset loadedAt, Action<NativeGeneration> drained)
{
    // Starts at 1: the hold of being current.
    private int _holds = 1;

    public NativeRuntime Runtime { get; } = runtime;

    /// <summary>The file the library was loaded from (for a swap, the path given, not the private copy).</summary>
    public string? SourcePath { get; } = sourcePath;

    /// <summary>1 for the library loaded at startup, one more for each hot swap.</summary>
    public long Number { get; } = number;

    public DateTimeOffset LoadedAt { get; } = loadedAt;

    /// <summary>Takes a hold unless the generation has already drained.</summary>
    public bool TryHold()
    {
        var holds = Volatile.Read(ref _holds);
        while (holds > 0)
        {
            var seen = Interlocked.CompareExchange(ref _holds, holds + 1, holds);
            if (seen == holds)
            {
                return true;
            }

            holds = seen;
        }

        return false;
    }

    /// <summary>Returns a hold (or the one of being current); the last one drains the generation.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _holds) == 0)
        {
            drained(this);
        }
    }
}
