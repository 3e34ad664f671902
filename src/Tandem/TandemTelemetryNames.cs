namespace Tandem;

/// <summary>
/// The names Tandem's telemetry uses (DESIGN.md §7), for dashboards,
/// alerts and listeners: the meter and activity source, the instruments, and
/// the tag values of codes and backends.
/// </summary>
public static class TandemTelemetryNames
{
    /// <summary>Name of the Meter and the ActivitySource.</summary>
    public const string Source = "Tandem";

    /// <summary>Counter of completed calls, tagged kernel, backend, code.</summary>
    public const string Calls = "tandem.calls";

    /// <summary>Counter of calls moved to another backend, tagged kernel, from, to, reason.</summary>
    public const string Fallbacks = "tandem.fallbacks";

    /// <summary>Counter of calls refused before they were queued, tagged kernel, reason (the limit, such as <c>max_work_per_call</c>).</summary>
    public const string Rejections = "tandem.rejections";

    /// <summary>Histogram (seconds) from admission to completion, tagged kernel, backend, code.</summary>
    public const string CallDuration = "tandem.call.duration";

    /// <summary>Histogram (seconds) from admission to the start of the call's batch, tagged kernel.</summary>
    public const string QueueDuration = "tandem.queue.duration";

    /// <summary>Histogram (seconds) of backend time per batch or call, tagged kernel.</summary>
    public const string ComputeDuration = "tandem.compute.duration";

    /// <summary>Histogram of rows per executed batch, tagged kernel.</summary>
    public const string BatchSize = "tandem.batch.size";

    /// <summary>Gauge of calls admitted and not yet completed, tagged kernel, backend.</summary>
    public const string QueueDepth = "tandem.queue.depth";

    /// <summary>Gauge of batches or calls running on a backend, tagged kernel, backend.</summary>
    public const string InFlight = "tandem.inflight";

    /// <summary>The gRPC name of a code (INVALID_ARGUMENT, ...), as tags, logs and the Rust side spell it.</summary>
    public static string Code(TandemStatusCode code) => code switch
    {
        TandemStatusCode.Ok => "OK",
        TandemStatusCode.Cancelled => "CANCELLED",
        TandemStatusCode.Unknown => "UNKNOWN",
        TandemStatusCode.InvalidArgument => "INVALID_ARGUMENT",
        TandemStatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        TandemStatusCode.NotFound => "NOT_FOUND",
        TandemStatusCode.AlreadyExists => "ALREADY_EXISTS",
        TandemStatusCode.PermissionDenied => "PERMISSION_DENIED",
        TandemStatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        TandemStatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        TandemStatusCode.Aborted => "ABORTED",
        TandemStatusCode.OutOfRange => "OUT_OF_RANGE",
        TandemStatusCode.Unimplemented => "UNIMPLEMENTED",
        TandemStatusCode.Internal => "INTERNAL",
        TandemStatusCode.Unavailable => "UNAVAILABLE",
        TandemStatusCode.DataLoss => "DATA_LOSS",
        TandemStatusCode.Unauthenticated => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    };

    /// <summary>The tag value of a backend: managed, native or remote.</summary>
    public static string Backend(BackendKind backend) => backend switch
    {
        BackendKind.Native => "native",
        BackendKind.Remote => "remote",
        _ => "managed",
    };
}
