using System.Text.RegularExpressions;

namespace Tandem;

/// <summary>
/// Every failure of a Tandem call: a status code, the kernel and backend it
/// came from, whether retrying may help, and a correlation id that ties the
/// message to the detailed log line.
/// </summary>
public sealed partial class TandemException : Exception
{
    public TandemException(TandemStatusCode code, string message, string? kernel = null, BackendKind? backend = null, string? correlationId = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
        Kernel = kernel;
        Backend = backend;
        CorrelationId = correlationId ?? ParseCorrelationId(message);
        Limit = ParseLimit(message);
    }

    public TandemStatusCode Code { get; }

    /// <summary>The kernel the call was for, when there was one.</summary>
    public string? Kernel { get; }

    /// <summary>The backend that failed, when the failure came from one.</summary>
    public BackendKind? Backend { get; }

    /// <summary>Id of the log line holding the details (internal errors), or null.</summary>
    public string? CorrelationId { get; }

    /// <summary>
    /// The named limit that refused the call, when one did: the
    /// <c>(limit NAME)</c> every budget's message carries, on whichever side
    /// of the boundary it was refused (for example <c>max_work_per_call</c>,
    /// <c>Tandem:Batching:QueueLimit</c>); null otherwise.
    /// </summary>
    public string? Limit { get; }

    /// <summary>
    /// Whether the same call may succeed if retried or sent elsewhere
    /// (<see cref="TandemStatusCodes.IsRetryable"/>): RESOURCE_EXHAUSTED,
    /// UNAVAILABLE and DEADLINE_EXCEEDED — except a refusal by a per-call
    /// limit (<see cref="TandemStatusCodes.IsPerCallLimit"/>), which the same
    /// call meets again on every backend and every worker.
    /// </summary>
    public bool IsRetryable => TandemStatusCodes.IsRetryable(Code) && !TandemStatusCodes.IsPerCallLimit(Limit);

    internal static TandemException Invalid(string kernel, string message) => new(TandemStatusCode.InvalidArgument, message, kernel);

    [GeneratedRegex(@"correlation id ([0-9a-f]+)")]
    private static partial Regex CorrelationPattern();

    [GeneratedRegex(@"\(limit ([A-Za-z0-9_:.\-]+)\)")]
    private static partial Regex LimitPattern();

    private static string? ParseLimit(string message)
    {
        var match = LimitPattern().Match(message);
        return match.Success ? match.Groups[1].Value : null;
    }

    private static string? ParseCorrelationId(string message)
    {
        var match = CorrelationPattern().Match(message);
        return match.Success ? match.Groups[1].Value : null;
    }
}
