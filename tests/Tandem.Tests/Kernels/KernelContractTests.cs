using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using Tandem.Kernels;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tandem.Tests.Kernels;

/// <summary>The public contract model: what generated code exposes of a library's descriptors, with no protobuf type in sight.</summary>
[Collection(FixtureLibraryCollection.Name)]
public sealed class KernelContractTests
{
    [Fact]
    public void GeneratedContract_FixtureScale_DescribesTensorsParamsAndFlags()
    {
        var sut = FixtureKernels.FixtureScale.Contract;

        Assert.Equal("fixture.scale", sut.Name);
        Assert.Equal(1u, sut.Version);
        var x = Assert.Single(sut.Inputs);
        Assert.Equal(("x", TensorDType.F64, true), (x.Name, x.DType, x.FiniteOnly));
        Assert.Equal([TensorDim.Symbolic("batch")], x.Shape);
        var factor = Assert.Single(sut.Params);
        Assert.Equal(("factor", ParamKind.Float, -1e6, 1e6, 2.0), (factor.Name, factor.Kind, factor.Min, factor.Max, factor.Default));
        Assert.True(sut.Flags.Batchable && sut.Flags.Idempotent && sut.Flags.Deterministic && !sut.Flags.Streaming);
        Assert.Null(sut.StateKind);
    }

    [Fact]
    public void GeneratedContract_StatefulKernel_CarriesItsStateKind()
    {
        var sut = FixtureKernels.FixtureLookup.Contract;

        Assert.Equal("fixture.table", sut.StateKind?.Name);
        Assert.Equal([TensorDim.Symbolic("n")], Assert.Single(sut.StateKind!.Tensors).Shape);
    }

    [Fact]
    public void GeneratedContract_Hash_IsWhatTheLibraryReports()
    {
        var runtime = NativeRuntime.Load(Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so"), [], NullLogger.Instance);

        foreach (var published in runtime.KernelSet!.Kernels)
        {
            Assert.Equal(published.Hash, FixtureKernels.Contracts[published.Name].Hash);
        }
    }

    [Fact]
    public void ReferenceContract_OutputSymbolsAndLimits_ArePublished()
    {
        var sut = Tandem.Internal.Kernels.KernelCatalog.ReferenceSet[ReferenceKernels.HashBlake3.Name];

        Assert.Equal(ReferenceKernels.HashBlake3.Hash, sut.Hash);
        Assert.Equal(("output_len", ReferenceKernels.HashBlake3.Limits.MaxOutputLen), (sut.OutputSymbols[0].Name, sut.OutputSymbols[0].Value));
        Assert.Equal(ReferenceKernels.HashBlake3.Limits.MaxOutputLen, Assert.Single(sut.Limits).Value);
    }

    [Fact]
    public void Parse_NotAKernelSet_FormatException()
    {
        Assert.Throws<FormatException>(() => KernelContractSet.Parse("not base64!"));
        Assert.Throws<FormatException>(() => KernelContractSet.Parse(new byte[] { 0xFF, 0xFF, 0xFF }));
    }

    [Fact]
    public void PublicSurface_ExposesNoProtobufType()
    {
        var exported = typeof(KernelContract).Assembly.GetExportedTypes();

        Assert.DoesNotContain(exported, t => t.Namespace == "Tandem.Contracts.V1");
    }
}
