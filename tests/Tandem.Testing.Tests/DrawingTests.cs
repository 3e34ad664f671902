using System.Reflection;
using Tandem.Testing.Internal;
using Tandem.Testing.Tests.Fixtures;
using Tandem.Tests.Kernels;

namespace Tandem.Testing.Tests;

/// <summary>What the kit draws from a descriptor, and which backends its theories run on.</summary>
public sealed class DrawingTests
{
    [Fact]
    public void DrawCase_SameSeed_SameCase()
    {
        var sut = new Drawer();

        var first = sut.Draw(7);
        var second = sut.Draw(7);

        Assert.Equal(first.ToString(), second.ToString());
        Assert.Equal((double[])first.Inputs[0].Data, (double[])second.Inputs[0].Data);
        Assert.NotEqual(first.ToString(), sut.Draw(8).ToString());
    }

    [Fact]
    public void DrawCase_FixtureScale_SizesWithinBoundsAndParamInRange()
    {
        var sut = new Drawer();

        for (var seed = 0; seed < 50; seed++)
        {
            var drawn = sut.Draw(seed);
            var rows = drawn.Symbols["batch"];
            Assert.InRange(rows, 1, 64);
            Assert.Equal([rows], drawn.Inputs[0].Shape);
            Assert.Equal(rows, drawn.Inputs[0].Data.Length);
            Assert.All((double[])drawn.Inputs[0].Data, v => Assert.True(double.IsFinite(v)));
            Assert.InRange(drawn.Params["factor"], -1e6, 1e6);
        }
    }

    [Fact]
    public void DrawCase_FixedSymbol_Honoured()
    {
        var drawn = new Drawer().Draw(3, new Dictionary<string, long> { ["batch"] = 0 });

        Assert.Equal([0L], drawn.Inputs[0].Shape);
        Assert.Empty(drawn.Inputs[0].Data);
    }

    [Fact]
    public void InvalidInputs_FixtureScale_CoverWhatTheDescriptorImplies()
    {
        var descriptions = DescriptorInvalidInputs.For(new Drawer().Draw(1)).Select(i => i.Description).ToArray();

        Assert.Contains(descriptions, d => d.Contains("given as f32", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("given with rank 2", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("given with rank 0", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("one element more", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("axis 0 of size -1", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("holding NaN", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("holding +infinity", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("below its min -1000000", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("above its max 1000000", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("unknown parameter", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("missing", StringComparison.Ordinal));
        Assert.Contains(descriptions, d => d.Contains("unknown output symbol", StringComparison.Ordinal));
        Assert.DoesNotContain(descriptions, d => d.Contains("state", StringComparison.Ordinal));
    }

    [Fact]
    public void BackendData_NoAttribute_NativeAndRemote()
    {
        var rows = Rows(typeof(FixtureScaleContractTests));

        Assert.Equal([BackendKind.Native, BackendKind.Remote], rows);
    }

    [Fact]
    public void BackendData_AttributeOnTheDerivedClass_OnlyItsBackends()
    {
        Assert.Equal([BackendKind.Native], Rows(typeof(NativeOnly)));
    }

    [Fact]
    public void BackendData_ManagedListed_Refused()
    {
        var error = Assert.Throws<ArgumentException>(() => Rows(typeof(ManagedListed)));

        Assert.Contains("[KernelBackends] on ManagedListed must list Native, Remote or both", error.Message);
    }

    private static BackendKind[] Rows(Type testClass)
    {
        var method = testClass.GetMethod(nameof(KernelContractTests.RandomInputs_MatchTheManagedTwin))!;
        return [.. method.GetCustomAttribute<BackendDataAttribute>()!.GetData(method).Select(row => (BackendKind)row[0])];
    }

    private sealed class Drawer() : KernelContractTests(new KernelTestHosts())
    {
        protected override string Kernel => FixtureKernels.FixtureScale.Name;

        protected override Tandem.Kernels.KernelContractSet Contracts => FixtureKernels.Contracts;

        public KernelCase Draw(int seed, IReadOnlyDictionary<string, long>? symbols = null) => DrawCase(seed, symbols);

        protected override void ConfigureServices(Microsoft.Extensions.DependencyInjection.IServiceCollection services, BackendKind backend) =>
            throw new InvalidOperationException("drawing needs no host");
    }

    [KernelBackends(BackendKind.Native)]
    private sealed class NativeOnly(KernelTestHosts hosts) : FixtureContractTests(hosts)
    {
        protected override string Kernel => FixtureKernels.FixtureScale.Name;
    }

    [KernelBackends(BackendKind.Managed)]
    private sealed class ManagedListed(KernelTestHosts hosts) : FixtureContractTests(hosts)
    {
        protected override string Kernel => FixtureKernels.FixtureScale.Name;
    }
}
