using Tandem.Internal.Telemetry;

namespace Tandem.Tests.Telemetry;

public sealed class TelemetryNamesTests
{
    [Theory]
    [InlineData(TandemStatusCode.AlreadyExists, "ALREADY_EXISTS")]
    [InlineData(TandemStatusCode.PermissionDenied, "PERMISSION_DENIED")]
    [InlineData(TandemStatusCode.OutOfRange, "OUT_OF_RANGE")]
    [InlineData(TandemStatusCode.DataLoss, "DATA_LOSS")]
    [InlineData(TandemStatusCode.InvalidArgument, "INVALID_ARGUMENT")]
    public void CodeName_EveryCode_IsItsGrpcName(TandemStatusCode code, string expected)
    {
        Assert.Equal(expected, TandemTelemetry.CodeName(code));
    }

    [Fact]
    public void CodeName_AllCodes_DistinctUpperSnakeCase()
    {
        var names = Enum.GetValues<TandemStatusCode>().Select(TandemTelemetry.CodeName).ToArray();

        Assert.Equal(names.Length, names.Distinct().Count());
        Assert.All(names, n => Assert.Matches("^[A-Z]+(_[A-Z]+)*$", n));
    }
}
