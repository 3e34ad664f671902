using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Tests.Native;

namespace Tandem.Tests.Contracts;

/// <summary>The generated contracts, the descriptor hash on both sides of the boundary, and the load-time comparison.</summary>
public sealed class KernelContractsTests
{
    public static TheoryData<string> Kernels() => [.. ReferenceKernels.Set.Kernels.Select(k => k.Name)];

    [Theory]
    [MemberData(nameof(Kernels))]
    public void HashOf_GeneratedDescriptor_EqualsTheHashTheRustSdkComputed(string kernel)
    {
        var descriptor = ReferenceKernels.Set.Kernels.Single(k => k.Name == kernel);

        Assert.Equal(32, descriptor.Hash.Length);
        Assert.Equal(descriptor.Hash, KernelContracts.HashOf(descriptor));
    }

    [Fact]
    public void HashOf_StateKindChanges_HashChanges()
    {
        var kind = ReferenceKernels.SimilarityTopk.StateKind.Clone();
        kind.Tensors[0].FiniteOnly = false;

        Assert.NotEqual(ReferenceKernels.SimilarityTopk.Hash, DescriptorHash.Of(ReferenceKernels.SimilarityTopk.Descriptor, kind));
    }

    [Fact]
    public void Difference_SameContract_Null()
    {
        var published = ReferenceKernels.HashBlake3.Descriptor.Clone();
        published.Library = "somewhere-else";

        Assert.Null(KernelContracts.Difference(ReferenceKernels.HashBlake3.Descriptor, published));
    }

    [Fact]
    public void Difference_ChangedParameterRange_NamesBothHashesAndTheLibrary()
    {
        var changed = ReferenceKernels.SimilarityTopk.Descriptor.Clone();
        changed.Params[0].Max = 100;

        var difference = KernelContracts.Difference(changed, ReferenceKernels.SimilarityTopk.Descriptor);

        Assert.NotNull(difference);
        Assert.Contains($"library 'tandem' reports descriptor hash {ReferenceKernels.SimilarityTopk.Hash}", difference);
        Assert.Contains($"generated from {KernelContracts.HashOf(changed)}", difference);
    }

    [Fact]
    public void Difference_MissingKernel_SaysSo()
    {
        Assert.Equal("the library has no kernel 'hash.blake3'", KernelContracts.Difference(ReferenceKernels.HashBlake3.Descriptor, null));
    }

    [Fact]
    public void GeneratedContracts_MatchWhatTheLoadedLibraryPublishes()
    {
        var runtime = NativeLibraryFixture.Runtime;

        foreach (var expected in ReferenceKernels.Set.Kernels)
        {
            var actual = runtime.KernelSet!.Kernels.Single(k => k.Name == expected.Name);
            Assert.Equal(expected, actual);
        }

        Assert.Equal(ReferenceKernels.LibraryName, runtime.KernelSet!.LibraryName);
    }

    [Fact]
    public void Limits_AreTheDescriptorsOwn()
    {
        Assert.Equal(ReferenceKernels.SimilarityTopk.Limits.MaxK, ReferenceKernels.SimilarityTopk.Descriptor.Params[ReferenceKernels.SimilarityTopk.Params.K.Index].Max);
        Assert.Equal(KernelContracts.MaxHashOutput, ReferenceKernels.HashBlake3.Descriptor.Limits.Single(l => l.Name == "max_output_len").Value);
        Assert.Equal(DType.F32, ReferenceKernels.SimilarityTopk.Descriptor.Inputs[0].Dtype);
    }
}
