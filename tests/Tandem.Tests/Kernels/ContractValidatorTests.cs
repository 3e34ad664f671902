using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;

namespace Tandem.Tests.Kernels;

/// <summary>Calls that break the contract are refused before any backend, with the Rust registry's messages.</summary>
public sealed class ContractValidatorTests
{
    [Fact]
    public void Validate_WellFormedCall_Passes()
    {
        using var call = European(new double[12], 2, 6, new long[2], 2).Param(10L).Param(0L).Param(0L);
        ContractValidator.Validate(call);
    }

    [Fact]
    public void Validate_WrongDType_NamesTensorAndBothTypes()
    {
        using var call = new KernelCall(KernelContracts.European).Input<float>(new float[6], 1, 6).Input<long>(new long[1], 1);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Equal("tensor 'options' must be f64, got f32", error.Message);
    }

    [Fact]
    public void Validate_FixedDimensionMismatch_NamesAxis()
    {
        using var call = European(new double[10], 2, 5, new long[2], 2).Param(10L).Param(0L).Param(0L);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Equal("tensor 'options' axis 1 must have size 6, got 5", error.Message);
    }

    [Fact]
    public void Validate_SymbolBoundTwiceDifferently_NamesSymbol()
    {
        using var call = European(new double[12], 2, 6, new long[3], 3).Param(10L).Param(0L).Param(0L);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Equal("tensor 'row_keys' axis 0 ('batch') has size 3, but another tensor set 'batch' = 2", error.Message);
    }

    [Fact]
    public void Validate_ShapeDisagreesWithLength_InvalidArgument()
    {
        using var call = European(new double[6], 2, 6, new long[2], 2).Param(10L).Param(0L).Param(0L);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Contains("has 48 bytes", error.Message);
    }

    [Fact]
    public void Validate_MissingParameters_CountsThem()
    {
        using var call = European(new double[6], 1, 6, new long[1], 1).Param(10L);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Equal("kernel 'montecarlo.european' takes 3 parameter(s), got 1", error.Message);
    }

    [Fact]
    public void Validate_BoolParameterOutOfRange_ShowsRange()
    {
        using var call = European(new double[6], 1, 6, new long[1], 1).Param(10L).Param(0L).Param(2L);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Equal("parameter 'antithetic' must be in [0, 1], got 2", error.Message);
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Equal("montecarlo.european", error.Kernel);
    }

    private static KernelCall European(double[] rows, long batch, long width, long[] keys, long keyCount) =>
        new KernelCall(KernelContracts.European)
            .Input<double>(rows, batch, width)
            .Input<long>(keys, keyCount)
            .Output(new double[batch].AsMemory(), batch)
            .Output(new double[batch].AsMemory(), batch);

    [Fact]
    public void Validate_OutputShapeDisagreesWithLength_InvalidArgument()
    {
        using var call = new KernelCall(KernelContracts.European)
            .Input<double>(new double[6], 1, 6)
            .Input<long>(new long[1], 1)
            .Output(new double[1].AsMemory(), 3)
            .Output(new double[1].AsMemory(), 1)
            .Param(10L).Param(0L).Param(0L);
        var error = Assert.Throws<TandemException>(() => ContractValidator.Validate(call));
        Assert.Contains("'price' has 8 bytes", error.Message);
    }
}
