using System.Diagnostics;
using Grpc.Core;
using Tandem.Remote.Internal;

namespace Tandem.Tests.Remote;

public sealed class RemoteKernelBackendTests
{
    [Fact]
    public void Headers_InsideAnActivity_CarryItsW3CTraceParent()
    {
        using var activity = new Activity("test").SetIdFormat(ActivityIdFormat.W3C).Start();

        var headers = RemoteKernelBackend.Headers();

        Assert.Equal(activity.Id, Assert.Single(headers!, h => h.Key == "traceparent").Value);
    }

    [Fact]
    public void Headers_NoActivity_None()
    {
        Activity.Current = null;

        Assert.Null(RemoteKernelBackend.Headers());
    }

    [Theory]
    [InlineData(StatusCode.InvalidArgument, TandemStatusCode.InvalidArgument, false)]
    [InlineData(StatusCode.Unavailable, TandemStatusCode.Unavailable, true)]
    [InlineData(StatusCode.ResourceExhausted, TandemStatusCode.ResourceExhausted, true)]
    [InlineData(StatusCode.Internal, TandemStatusCode.Internal, false)]
    public void FromCall_StatusCode_SameNumberOnTheRemoteBackend(StatusCode status, TandemStatusCode expected, bool retryable)
    {
        var error = RemoteErrors.FromCall(new RpcException(new Status(status, "kernel failed (correlation id 5f3a)")), "similarity.topk", "w0", "Tandem:CallTimeout (10000 ms)", CancellationToken.None);

        Assert.Equal(expected, error.Code);
        Assert.Equal(BackendKind.Remote, error.Backend);
        Assert.Equal(retryable, error.IsRetryable);
        Assert.Equal("similarity.topk", error.Kernel);
        Assert.Equal("5f3a", error.CorrelationId);
    }

    [Fact]
    public void FromCall_CancelledWithoutTheCallerCancelling_UnavailableSoItMayGoElsewhere()
    {
        var error = RemoteErrors.FromCall(new RpcException(new Status(StatusCode.Cancelled, "gRPC call disposed.")), "k", "w0", "Tandem:CallTimeout (10000 ms)", CancellationToken.None);

        Assert.Equal(TandemStatusCode.Unavailable, error.Code);
    }
}
