using Grpc.Core;

namespace Tandem.Remote.Internal;

/// <summary>gRPC statuses become <see cref="TandemException"/>s with the same code number.</summary>
internal static class RemoteErrors
{
    /// <param name="deadline">The setting the call's deadline came from, for the DEADLINE_EXCEEDED message.</param>
    public static TandemException From(RpcException e, string? kernel, string worker, string deadline = "the call's deadline") =>
        new((TandemStatusCode)(int)e.StatusCode, Message(e, worker, deadline), kernel, BackendKind.Remote, innerException: e);

    /// <summary>
    /// A call the caller did not cancel that still ended CANCELLED lost its
    /// connection (the worker's channel closed under it): UNAVAILABLE, so it may go elsewhere.
    /// </summary>
    public static TandemException FromCall(RpcException e, string kernel, string worker, string deadline, CancellationToken cancellationToken) =>
        cancellationToken.IsCancellationRequested
            ? new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller", kernel, BackendKind.Remote, innerException: e)
            : e.StatusCode == StatusCode.Cancelled
                ? new TandemException(TandemStatusCode.Unavailable, $"worker {worker} closed the connection during the call", kernel, BackendKind.Remote, innerException: e)
                : From(e, kernel, worker, deadline);

    public static TandemException Unavailable(string? kernel, string message) =>
        new(TandemStatusCode.Unavailable, message, kernel, BackendKind.Remote);

    private static string Message(RpcException e, string worker, string deadline) => e.StatusCode switch
    {
        StatusCode.DeadlineExceeded => $"worker {worker} did not answer within {deadline}",
        StatusCode.Unavailable when string.IsNullOrEmpty(e.Status.Detail) || e.Status.DebugException is not null => $"worker {worker} is unavailable",
        _ => $"worker {worker}: {e.Status.Detail}",
    };
}
