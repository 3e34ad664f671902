using System.Collections.Concurrent;

namespace Tandem.Remote.Internal.SharedMemory;

/// <summary>
/// Regions for large call tensors, reused across calls: sizes are rounded up
/// to a power of two (at least 1 MiB) and at most <c>poolSize</c> idle
/// regions are kept; the rest are discarded (unregistered, deleted).
/// </summary>
internal sealed class SharedMemoryPool(string directory, string prefix, int poolSize, Action<MappedRegion> discard) : IDisposable
{
    private const long MinRegionBytes = 1 << 20;
    private readonly ConcurrentBag<MappedRegion> _idle = [];
    private readonly ConcurrentDictionary<MappedRegion, byte> _all = new();
    private long _sequence;
    private long _rentals;
    private volatile bool _disposed;

    /// <summary>Where the region files are.</summary>
    public string Directory => directory;

    /// <summary>Start of every file name this client creates.</summary>
    public string Prefix { get; } = prefix;

    /// <summary>Regions handed out so far (a test hook, and a metric).</summary>
    public long Rentals => Interlocked.Read(ref _rentals);

    public MappedRegion Rent(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Interlocked.Increment(ref _rentals);
        var size = Math.Max(MinRegionBytes, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)bytes));
        var skipped = new List<MappedRegion>();
        try
        {
            while (_idle.TryTake(out var region))
            {
                if (region.Size >= size)
                {
                    return region;
                }

                skipped.Add(region);
            }
        }
        finally
        {
            foreach (var region in skipped)
            {
                Return(region);
            }
        }

        return Create(size);
    }

    /// <summary>A region owned by its caller (a state's tensors), not pooled; still deleted when the pool is.</summary>
    public MappedRegion CreateDedicated(long bytes) => Create(Math.Max(bytes, 1));

    public void Return(MappedRegion region)
    {
        if (!_disposed && _idle.Count < poolSize)
        {
            _idle.Add(region);
            return;
        }

        Discard(region);
    }

    public void Discard(MappedRegion region)
    {
        if (_all.TryRemove(region, out _))
        {
            discard(region);
        }
    }

    private MappedRegion Create(long size)
    {
        var region = new MappedRegion(directory, $"{Prefix}{Interlocked.Increment(ref _sequence)}", size);
        _all[region] = 0;
        if (_disposed)
        {
            Discard(region);
            throw new ObjectDisposedException(nameof(SharedMemoryPool));
        }

        return region;
    }

    /// <summary>Discards every region, idle or not (unregistered from workers still serving, deleted).</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var region in _all.Keys)
        {
            Discard(region);
        }
    }
}
