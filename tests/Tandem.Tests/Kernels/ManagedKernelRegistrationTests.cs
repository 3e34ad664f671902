using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Internal.Contracts;
using Tandem.Kernels;

namespace Tandem.Tests.Kernels;

/// <summary>A managed twin is accepted only for a kernel the host knows, with the descriptor hash it names; anything else fails startup naming it.</summary>
public sealed class ManagedKernelRegistrationTests
{
    [Fact]
    public void Startup_TwinOfAKernelNoLibraryPublishes_FailsNamingTheTwinAndTheKernel()
    {
        using var services = CreateSut(s => s.AddKernelContracts(FixtureKernels.Contracts).AddManagedKernel<UnknownKernelTwin>());

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("managed twin 'UnknownKernelTwin' implements kernel 'fixture.missing', which no known kernel library publishes", error.Message);
    }

    [Fact]
    public void Startup_TwinOfAnUndeclaredLibrary_FailsNamingTheTwin()
    {
        // fixture.scale exists, but nobody declared its library's contracts to this host.
        using var services = CreateSut(s => s.AddManagedKernel<ScaleTwin>());

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("managed twin 'ScaleTwin' implements kernel 'fixture.scale'", error.Message);
        Assert.Contains("AddKernelContracts", error.Message);
    }

    [Fact]
    public void Startup_TwinWrittenAgainstAnotherDescriptor_FailsNamingBothHashes()
    {
        using var services = CreateSut(s => s.AddKernelContracts(FixtureKernels.Contracts).AddManagedKernel<StaleScaleTwin>());

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("managed twin 'StaleScaleTwin' was written against descriptor hash 00000000000000000000000000000000 of kernel 'fixture.scale'", error.Message);
        Assert.Contains($"the host's contract has hash {FixtureKernels.FixtureScale.Hash}", error.Message);
    }

    [Fact]
    public void Resolve_RefusedTwin_FailedPreconditionNamingTheTwin()
    {
        using var services = CreateSut(s => s.AddKernelContracts(FixtureKernels.Contracts).AddManagedKernel<StaleScaleTwin>());

        var error = Assert.Throws<TandemException>(() => services.GetRequiredService<IKernelInvoker>());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("StaleScaleTwin", error.Message);
    }

    [Fact]
    public void Startup_StateKindTwinOfAnUnknownKind_FailsNamingIt()
    {
        using var services = CreateSut(s => s.AddManagedStateKind<TableTwin>());

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("managed state kind 'TableTwin' builds state kind 'fixture.table'", error.Message);
    }

    [Fact]
    public void Startup_TwinsOfDeclaredKernels_Accepted()
    {
        using var services = CreateSut(s => s.AddKernelContracts(FixtureKernels.Contracts).AddManagedKernel<ScaleTwin>().AddManagedKernel<ScaleTwin>().AddManagedStateKind<TableTwin>());

        services.GetRequiredService<IStartupValidator>().Validate();

        Assert.Equal(FixtureKernels.FixtureScale.Hash, services.GetRequiredService<IKernelInvoker>().GetContract(FixtureKernels.FixtureScale.Name).Hash);
    }

    [Fact]
    public void Startup_SameKernelDeclaredWithAnotherDescriptor_FailsNamingTheKernel()
    {
        // The fixture's "changed" variant of fixture.scale is simulated by a set whose descriptor differs.
        var changed = KernelContractSet.Parse(ChangedScaleSet());
        using var services = CreateSut(s => s.AddKernelContracts(FixtureKernels.Contracts).AddKernelContracts(changed));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("kernel 'fixture.scale' is declared twice with different descriptors", error.Message);
    }

    private static byte[] ChangedScaleSet()
    {
        var set = new Tandem.Contracts.V1.KernelSet { LibraryName = "changed", AbiVersion = 1 << 16 };
        var scale = FixtureKernels.FixtureScale.Contract;
        var descriptor = Google.Protobuf.MessageExtensions.ToByteArray(new Tandem.Contracts.V1.KernelDescriptor { Name = scale.Name, Version = scale.Version + 1 });
        set.Kernels.Add(Tandem.Contracts.V1.KernelDescriptor.Parser.ParseFrom(descriptor));
        return Google.Protobuf.MessageExtensions.ToByteArray(set);
    }

    private static ServiceProvider CreateSut(Action<IServiceCollection> register)
    {
        var services = new ServiceCollection().AddTandem(o => o.Backend = BackendKind.Managed);
        register(services);
        return services.BuildServiceProvider();
    }
}
