namespace Tandem.Kernels;

/// <summary>One state the repository holds, as its file's header describes it.</summary>
/// <param name="Name">The state's name (1 to 200 letters, digits, '_', '-', '.'; not starting with '.').</param>
/// <param name="Version">Its version, from 1; a stored version never changes.</param>
/// <param name="Kind">The state kind that reads it; empty when the file's header is unreadable (loading it says why).</param>
/// <param name="SizeBytes">Bytes of its tensors.</param>
/// <param name="CreatedAt">When it was written.</param>
public sealed record StoredStateInfo(string Name, long Version, string Kind, long SizeBytes, DateTimeOffset CreatedAt);

/// <summary>
/// The durable state repository (<see cref="TandemOptions.StateRepository"/>):
/// states written once, atomically, to a directory that outlives the
/// process and may be shared by several hosts, and loaded by name and
/// version, memory-mapped on the native backend after their checksum is
/// verified. Every operation fails with FAILED_PRECONDITION when no
/// repository is configured.
/// </summary>
public interface IStateRepository
{
    /// <summary>Whether <see cref="TandemOptions.StateRepository"/> names a directory.</summary>
    bool IsConfigured { get; }

    /// <summary>
    /// Builds a state of <paramref name="kind"/> from <paramref name="tensors"/>
    /// (checked as by <see cref="IKernelInvoker.CreateStateAsync"/>), stores it
    /// as (<paramref name="name"/>, <paramref name="version"/>) and returns it,
    /// held by the backend that serves the kind's kernel. Nothing is stored
    /// when the tensors are refused.
    /// </summary>
    /// <exception cref="TandemException">INVALID_ARGUMENT for bad tensors, name or version (≥ 1); ALREADY_EXISTS when that version exists, however close the race.</exception>
    ValueTask<KernelState> StoreAsync(string kind, string name, long version, IReadOnlyList<KernelTensor> tensors, CancellationToken cancellationToken = default);

    /// <summary>Loads (<paramref name="name"/>, <paramref name="version"/>; 0 = the newest) onto the backend that serves its kind's kernel.</summary>
    /// <exception cref="TandemException">NOT_FOUND naming the versions held; DATA_LOSS for a damaged file (never loaded); FAILED_PRECONDITION when its kind is unknown here or was declared differently.</exception>
    ValueTask<KernelState> LoadAsync(string name, long version = 0, CancellationToken cancellationToken = default);

    /// <summary>Every state the repository holds, in (name, version) order.</summary>
    IReadOnlyList<StoredStateInfo> List();

    /// <summary>Removes one version, or every version of <paramref name="name"/> when <paramref name="version"/> is 0; states already loaded keep working.</summary>
    /// <exception cref="TandemException">NOT_FOUND when there is nothing to remove.</exception>
    void Remove(string name, long version = 0);
}
