using System.ComponentModel.DataAnnotations;

namespace Tandem;

/// <summary>Bounds of the result cache (<see cref="TandemOptions.Cache"/>); kernels opt in with <see cref="KernelOptions.Cache"/>.</summary>
public sealed class CacheOptions
{
    /// <summary>Most results held.</summary>
    /// <value>The default is 10,000.</value>
    [Range(1, int.MaxValue)]
    public int MaxEntries { get; set; } = 10_000;

    /// <summary>Most bytes of results held; the least recently used go first.</summary>
    /// <value>The default is 64 MiB.</value>
    [Range(1L, long.MaxValue)]
    public long MaxBytes { get; set; } = 64L << 20;
}
