namespace Tandem.Internal.Native;

/// <summary>
/// One library in service (current) or draining after a hot swap. Every
/// native call and open stream holds a lease on the generation it started
/// on; being current counts as one more. When the count reaches zero the
/// generation retires: the native states built in it are freed. Its code
/// stays mapped (see <see cref="NativeLibraryBinding.Load"/>).
/// </summary>
internal sealed class NativeGeneration(NativeRuntime runtime, string? sourcePath, long number, DateTimeOffset loadedAt, Action<NativeGeneration> retire)
{
    // Starts at 1: the reference held by being current.
    private int _leases = 1;

    public NativeRuntime Runtime { get; } = runtime;

    /// <summary>The file the library was loaded from (for a swap, the path given, not the private copy).</summary>
    public string? SourcePath { get; } = sourcePath;

    /// <summary>1 for the library loaded at startup, one more for each hot swap.</summary>
    public long Number { get; } = number;

    public DateTimeOffset LoadedAt { get; } = loadedAt;

    /// <summary>Takes a lease unless the generation has already retired.</summary>
    public bool TryAcquire()
    {
        var leases = Volatile.Read(ref _leases);
        while (leases > 0)
        {
            var seen = Interlocked.CompareExchange(ref _leases, leases + 1, leases);
            if (seen == leases)
            {
                return true;
            }

            leases = seen;
        }

        return false;
    }

    /// <summary>Returns a lease (or the current reference); the last one retires the generation.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
        {
            retire(this);
        }
    }
}

/// <summary>A call's lease on the generation it runs on; disposing returns it.</summary>
internal readonly struct NativeGenerationLease(NativeGeneration generation) : IDisposable
{
    public NativeGeneration Generation { get; } = generation;

    public NativeRuntime Runtime => Generation.Runtime;

    public void Dispose() => Generation.Release();
}
