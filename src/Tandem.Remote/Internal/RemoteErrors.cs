using Grpc.Core;

namespace Tandem.Remote.Internal;

/// <summary>gRPC statuses become <see cref="TandemException"/>s with the same code number.</summary>
internal static class RemoteErrors
{
    public static TandemException From(RpcException e, string? kernel, string worker) =>
        new((TandemStatusCode)(int)e.StatusCode, Message(e, worker), kernel, BackendKind.Remote, innerException: e);

    public static TandemException Unavailable(string? kernel, string message) =>
        new(TandemStatusCode.Unavailable, message, kernel, BackendKind.Remote);

    /// <summary>Whether a failure says the worker (not the call) is unhealthy.</summary>
    public static bool CountsAgainstWorker(TandemStatusCode code) =>
        code is TandemStatusCode.Unavailable or TandemStatusCode.DeadlineExceeded;

    /// <summary>Whether the same call may succeed on another worker.</summary>
    public static bool TryElsewhere(TandemStatusCode code) =>
        code is TandemStatusCode.Unavailable or TandemStatusCode.ResourceExhausted or TandemStatusCode.DeadlineExceeded;

    private static string Message(RpcException e, string worker) => e.StatusCode switch
    {
        StatusCode.DeadlineExceeded => $"worker {worker} did not answer within the call's deadline",
        StatusCode.Unavailable when string.IsNullOrEmpty(e.Status.Detail) || e.Status.DebugException is not null => $"worker {worker} is unavailable",
        _ => $"worker {worker}: {e.Status.Detail}",
    };
}
