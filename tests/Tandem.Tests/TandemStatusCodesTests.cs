namespace Tandem.Tests;

/// <summary>
/// The one table of what each code allows (DESIGN §6): retry or send
/// elsewhere, fall back to another backend, count against a backend's
/// circuit or a remote worker's health.
/// </summary>
public sealed class TandemStatusCodesTests
{
    public static TheoryData<TandemStatusCode, bool, bool, bool, bool> Table => new()
    {
        // code, retryable, may fall back, counts against backend, counts against worker
        { TandemStatusCode.Ok, false, false, false, false },
        { TandemStatusCode.Cancelled, false, false, false, false },
        { TandemStatusCode.Unknown, false, false, false, false },
        { TandemStatusCode.InvalidArgument, false, false, false, false },
        { TandemStatusCode.DeadlineExceeded, true, true, false, true },
        { TandemStatusCode.NotFound, false, false, false, false },
        { TandemStatusCode.AlreadyExists, false, false, false, false },
        { TandemStatusCode.PermissionDenied, false, false, false, false },
        { TandemStatusCode.ResourceExhausted, true, true, false, false },
        { TandemStatusCode.FailedPrecondition, false, false, false, false },
        { TandemStatusCode.Aborted, false, false, false, false },
        { TandemStatusCode.OutOfRange, false, false, false, false },
        { TandemStatusCode.Unimplemented, false, false, false, false },
        { TandemStatusCode.Internal, false, true, true, false },
        { TandemStatusCode.Unavailable, true, true, true, true },
        { TandemStatusCode.DataLoss, false, false, false, false },
        { TandemStatusCode.Unauthenticated, false, false, false, false },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Predicates_EachCode_MatchTheTable(TandemStatusCode code, bool retryable, bool mayFallBack, bool countsAgainstBackend, bool countsAgainstWorker)
    {
        Assert.Equal(retryable, TandemStatusCodes.IsRetryable(code));
        Assert.Equal(retryable, new TandemException(code, "failed").IsRetryable);
        Assert.Equal(mayFallBack, TandemStatusCodes.MayFallBack(new TandemException(code, "failed")));
        Assert.Equal(countsAgainstBackend, TandemStatusCodes.CountsAgainstBackend(code));
        Assert.Equal(countsAgainstWorker, TandemStatusCodes.CountsAgainstWorker(code));
    }

    [Theory]
    [InlineData("kernel 'k' asks for 12 units of work (n 12); at most 10 per call (limit max_work_per_call); split the call", "max_work_per_call", false)]
    [InlineData("kernel 'k' already has 8 calls waiting or running; retry later (limit Tandem:Batching:QueueLimit)", "Tandem:Batching:QueueLimit", true)]
    [InlineData("the worker is busy", null, true)]
    public void IsRetryable_ResourceExhausted_FalseOnlyForAPerCallLimit(string message, string? limit, bool retryable)
    {
        var error = new TandemException(TandemStatusCode.ResourceExhausted, message);

        Assert.Equal(limit, error.Limit);
        Assert.Equal(retryable, error.IsRetryable);
        Assert.Equal(retryable, TandemStatusCodes.MayFallBack(error));
    }

    [Fact]
    public void Table_EveryCode_HasARow()
    {
        var rows = Table.Select(row => (TandemStatusCode)row[0]!).ToHashSet();

        Assert.Equal(Enum.GetValues<TandemStatusCode>().ToHashSet(), rows);
    }
}
