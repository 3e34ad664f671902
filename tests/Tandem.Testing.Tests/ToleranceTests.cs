namespace Tandem.Testing.Tests;

public sealed class ToleranceTests
{
    [Fact]
    public void Bitwise_SignedZerosAndNaNPayloads_Differ()
    {
        Assert.False(Tolerance.Bitwise.Accepts(0.0, -0.0, single: false));
        Assert.False(Tolerance.Bitwise.Accepts(0f, -0f, single: true));
        Assert.True(Tolerance.Bitwise.Accepts(double.NaN, double.NaN, single: false));
        Assert.True(Tolerance.Bitwise.Accepts(1.5, 1.5, single: false));
    }

    [Fact]
    public void Ulps_AdjacentValues_AcceptedWithinTheCount()
    {
        var next = Math.BitIncrement(Math.BitIncrement(1.0));

        Assert.True(Tolerance.Ulps(2).Accepts(1.0, next, single: false));
        Assert.False(Tolerance.Ulps(1).Accepts(1.0, next, single: false));
        Assert.True(Tolerance.Ulps(1).Accepts(0f, -0f, single: true));
        Assert.False(Tolerance.Ulps(1).Accepts(float.Epsilon, -float.Epsilon, single: true));
        Assert.True(Tolerance.Ulps(0).Accepts(double.NaN, double.NaN, single: false));
    }

    [Fact]
    public void Relative_ScalesWithTheLargerMagnitude()
    {
        var sut = Tolerance.Relative(1e-3, absolute: 1e-9);

        Assert.True(sut.Accepts(1000, 1000.9, single: false));
        Assert.False(sut.Accepts(1000, 1002, single: false));
        Assert.True(sut.Accepts(0, 1e-10, single: false));
        Assert.False(sut.Accepts(double.PositiveInfinity, double.MaxValue, single: false));
    }

    [Fact]
    public void FirstDifference_FloatTensors_NamesElementIndexValuesBitsAndCount()
    {
        var expected = new TensorData("y", Tandem.Kernels.TensorDType.F32, [2, 3], new float[] { 1, 2, 3, 4, 5, 6 });
        var actual = new TensorData("y", Tandem.Kernels.TensorDType.F32, [2, 3], new float[] { 1, 2, 3, 4, 5.5f, 7 });

        var difference = KernelResultAssert.FirstDifference(expected, actual, Tolerance.Bitwise);

        Assert.Equal("output y f32[2, 3] differs at element 4 (index [1, 1]): expected 5 (0x40A00000), got 5.5 (0x40B00000); 2 of 6 element(s) differ (tolerance: bitwise)", difference);
    }

    [Fact]
    public void FirstDifference_ShapesDiffer_NamesBoth()
    {
        var expected = new TensorData("ids", Tandem.Kernels.TensorDType.I64, [2], new long[] { 1, 2 });
        var actual = new TensorData("ids", Tandem.Kernels.TensorDType.I64, [3], new long[] { 1, 2, 3 });

        Assert.Equal("output 'ids': expected i64[2], got i64[3]", KernelResultAssert.FirstDifference(expected, actual, Tolerance.Bitwise));
        Assert.Null(KernelResultAssert.FirstDifference(expected, expected, Tolerance.Bitwise));
    }
}
