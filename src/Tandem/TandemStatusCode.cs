namespace Tandem;

/// <summary>
/// The one error taxonomy on every boundary: the gRPC status codes, with the
/// same numbers in the C ABI and on the wire.
/// </summary>
public enum TandemStatusCode
{
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>
/// What a failure's code allows, defined once (DESIGN §6) for retries,
/// fallback, the remote worker pool and the HTTP API alike.
/// </summary>
public static class TandemStatusCodes
{
    /// <summary>
    /// Whether the same call may succeed if retried or sent elsewhere:
    /// RESOURCE_EXHAUSTED, UNAVAILABLE and DEADLINE_EXCEEDED (the backend was
    /// busy, down or slow; the call was not wrong). Never INVALID_ARGUMENT,
    /// NOT_FOUND, FAILED_PRECONDITION, UNIMPLEMENTED or INTERNAL. A retry
    /// still needs budget left: one whose caller gave up is not made.
    /// </summary>
    public static bool IsRetryable(TandemStatusCode code) =>
        code is TandemStatusCode.ResourceExhausted or TandemStatusCode.Unavailable or TandemStatusCode.DeadlineExceeded;

    /// <summary>
    /// The limit messages name for a descriptor's work bound, as the Rust SDK
    /// spells it (<c>tandem_sdk::validate::WORK_LIMIT</c>; a test compares them).
    /// </summary>
    public const string WorkLimit = "max_work_per_call";

    /// <summary>
    /// Whether <paramref name="limit"/> (<see cref="TandemException.Limit"/>)
    /// bounds one call rather than a shared budget: a call over it is refused
    /// again however long it waits and wherever it goes, so it is never
    /// retried, sent to another worker or given to a fallback, and HTTP
    /// answers 413 without Retry-After.
    /// </summary>
    public static bool IsPerCallLimit(string? limit) => limit == WorkLimit;

    /// <summary>
    /// Whether a failed call may run on the next backend of the fallback
    /// chain: what is retryable, and INTERNAL, because the same backend would
    /// fail the same way but another implementation need not.
    /// </summary>
    internal static bool MayFallBack(TandemException error) =>
        error.Code == TandemStatusCode.Internal || error.IsRetryable;

    /// <summary>
    /// Whether a failure counts toward opening the backend's circuit: only
    /// INTERNAL and UNAVAILABLE are faults of the backend; bad input, a full
    /// queue or a spent deadline say nothing about its health.
    /// </summary>
    internal static bool CountsAgainstBackend(TandemStatusCode code) =>
        code is TandemStatusCode.Internal or TandemStatusCode.Unavailable;

    /// <summary>
    /// Whether a failure counts toward ejecting a remote worker: UNAVAILABLE
    /// and DEADLINE_EXCEEDED say that worker is down or stuck, whereas every
    /// worker runs the same code (INTERNAL would repeat on any) and
    /// RESOURCE_EXHAUSTED means only busy.
    /// </summary>
    internal static bool CountsAgainstWorker(TandemStatusCode code) =>
        code is TandemStatusCode.Unavailable or TandemStatusCode.DeadlineExceeded;
}
