namespace Tandem.Remote;

/// <summary>Health of one worker as routing sees it.</summary>
public enum WorkerStatus
{
    /// <summary>Started or connected, not yet routable (warming up, replaying states).</summary>
    Starting = 0,

    /// <summary>Readiness SERVING and in routing.</summary>
    Serving = 1,

    /// <summary>Readiness NOT_SERVING or unknown (draining, unreachable).</summary>
    NotServing = 2,

    /// <summary>Out of routing after consecutive failures until a probe sees it SERVING.</summary>
    Ejected = 3,

    /// <summary>Being replaced (restart or upgrade): finishing its calls, then drained.</summary>
    Retiring = 4,
}

/// <summary>One worker of the pool.</summary>
/// <param name="Name">Stable name of the worker's slot (w0, w1, ... or the endpoint).</param>
/// <param name="Address">Where it listens (<c>unix:/path</c> or <c>http://host:port</c>).</param>
/// <param name="Status">Routing status.</param>
/// <param name="InFlight">Calls sent and not yet answered.</param>
/// <param name="Completed">Calls it answered successfully.</param>
/// <param name="Failed">Calls that failed on it.</param>
/// <param name="Version">Its version (<c>Describe.worker_version</c>), once known.</param>
/// <param name="InstanceId">Unique per process start, once known.</param>
/// <param name="ProcessId">Its process id when this client supervises it.</param>
public sealed record WorkerInfo(string Name, string Address, WorkerStatus Status, int InFlight, long Completed, long Failed, string? Version, string? InstanceId, int? ProcessId);

/// <summary>Operations on the Remote backend's workers, for an admin endpoint or dashboard.</summary>
public interface IWorkerPoolAdmin
{
    /// <summary>The workers now in the pool (empty before the first call or <see cref="StartAsync"/>).</summary>
    IReadOnlyList<WorkerInfo> Workers { get; }

    /// <summary>Starts (or connects to) the workers now instead of at the first call; completes when they serve.</summary>
    Task StartAsync(CancellationToken cancellationToken = default);

    /// <summary>Replaces one supervised worker by a fresh process; calls move to the others meanwhile.</summary>
    /// <exception cref="InvalidOperationException">The pool connects to external endpoints, or no worker has that name.</exception>
    Task RestartAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>
    /// Replaces every supervised worker, one at a time, by one running
    /// <paramref name="workerPath"/> (null: the same binary, a new build id):
    /// the new one serves and holds every state before the old one leaves
    /// routing and drains, so no call fails.
    /// </summary>
    /// <exception cref="InvalidOperationException">The pool connects to external endpoints.</exception>
    Task RollingUpgradeAsync(string? workerPath = null, CancellationToken cancellationToken = default);
}
