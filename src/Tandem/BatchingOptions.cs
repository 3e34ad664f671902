using System.ComponentModel.DataAnnotations;

namespace Tandem;

/// <summary>
/// Admission and dynamic batching of kernel calls (<see cref="TandemOptions.Batching"/>).
/// Changes apply to calls admitted after the change.
/// </summary>
public sealed class BatchingOptions
{
    /// <summary>
    /// Whether concurrent calls of a batchable kernel (same state, same
    /// parameters) are merged along axis 0 and run as one.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool Enabled { get; set; } = true;

    /// <summary>Most rows one merged batch may hold.</summary>
    /// <value>The default is 64.</value>
    [Range(1, 1_000_000)]
    public int MaxBatchRows { get; set; } = 64;

    /// <summary>
    /// Batch sizes (rows) the backend runs best at, as in Triton's dynamic
    /// batcher: as soon as the queue holds at least one of them, a batch of the
    /// largest such size runs without waiting for <see cref="MaxQueueDelay"/>.
    /// </summary>
    /// <value>The default is empty (wait for <see cref="MaxBatchRows"/> or the delay).</value>
    public int[] PreferredBatchRows { get; set; } = [];

    /// <summary>How long the first call of a batch may wait for others before the batch runs.</summary>
    /// <value>The default is 200 µs.</value>
    public TimeSpan MaxQueueDelay { get; set; } = TimeSpan.FromMicroseconds(200);

    /// <summary>Calls of one kernel that may wait or run at once; beyond that a call fails with RESOURCE_EXHAUSTED at once.</summary>
    /// <value>The default is 1024.</value>
    [Range(1, 10_000_000)]
    public int QueueLimit { get; set; } = 1024;

    /// <summary>Batches (or unbatched calls) of one kernel running at once on its backend; queued calls keep joining batches meanwhile.</summary>
    /// <value>The default is 2.</value>
    [Range(1, 1024)]
    public int MaxInFlight { get; set; } = 2;
}
