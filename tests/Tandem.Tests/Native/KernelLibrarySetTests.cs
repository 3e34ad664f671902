using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem.Hashing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using Tandem.Kernels;
using Tandem.Native;
using Tandem.Tests.Kernels;

namespace Tandem.Tests.Native;

/// <summary>
/// Several kernel libraries in one process: libtandem.so and the fixture
/// library (a user's, built with the SDK) side by side, found by path or by
/// name, refused at startup when they cannot serve together, hot-swapped one
/// at a time.
/// </summary>
[Collection(FixtureLibraryCollection.Name)]
public sealed partial class KernelLibrarySetTests : IDisposable
{
    private const string FixtureName = "tandem-fixture-kernels";
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("tandem-libraries-");

    public void Dispose() => _directory.Delete(recursive: true);

    [Fact]
    public async Task AddKernelLibrary_BesideLibtandem_BothServeOnNativeInOneProcess()
    {
        using var services = CreateSut(FixturePath);

        var scaled = await services.GetRequiredService<IKernelInvoker>().InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name)
            .Input<double>(new double[] { 1, -2 }, 2)
            .Param("factor", 2.0));
        var digest = services.GetRequiredService<IBlake3Hashing>().Hash("abc"u8);

        Assert.Equal(BackendKind.Native, scaled.Backend);
        Assert.Equal(new double[] { 2, -4 }, scaled.Output<double>(0).ToArray());
        Assert.Equal("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85", Convert.ToHexStringLower(digest));
        Assert.All(services.GetRequiredService<IKernelRouting>().Routes.Where(r => r.Kernel.StartsWith("fixture.", StringComparison.Ordinal)), r => Assert.Equal(BackendKind.Native, r.Serving));
        Assert.Equal(0, services.GetRequiredService<ScaleTwin>().Runs);
    }

    [Fact]
    public async Task AddKernelLibrary_UserStateKind_StateLivesInItsOwnLibrary()
    {
        using var services = CreateSut(FixturePath);
        var invoker = services.GetRequiredService<IKernelInvoker>();

        using var table = await invoker.CreateStateAsync(FixtureKernels.FixtureLookup.StateKind.Name, [KernelTensor.Of<double>(new double[] { 10, 20, 30 }, 3)]);
        var result = await invoker.InvokeAsync(new KernelRequest(FixtureKernels.FixtureLookup.Name) { State = table }.Input<long>(new long[] { 2, 0 }, 2));

        Assert.Equal(BackendKind.Native, table.Backend);
        Assert.Equal(BackendKind.Native, result.Backend);
        Assert.Equal(new double[] { 30, 10 }, result.Output<double>(0).ToArray());
    }

    [Fact]
    public async Task GeneratedRegistration_LoadsTheLibraryByNameAndServesItsFacades()
    {
        // What a user's app writes: the generated AddXxxKernels loads the library beside libtandem.so.
        using var services = new ServiceCollection()
            .AddTandem(o => o.FallbackToManaged = false)
            .AddFixtureKernels()
            .AddManagedKernel<ScaleTwin>()
            .AddManagedKernel<LookupTwin>()
            .AddManagedKernel<ByteSumTwin>()
            .AddManagedStateKind<TableTwin>()
            .BuildServiceProvider();
        services.GetRequiredService<IStartupValidator>().Validate();

        var scaled = await services.GetRequiredService<FixtureScaleKernel>().InvokeAsync(new double[] { 1, 2 }, factor: 3);
        using var table = await services.GetRequiredService<FixtureTableStateKind>().CreateAsync(new double[] { 5, 6, 7 });
        var looked = await services.GetRequiredService<FixtureLookupKernel>().InvokeAsync(table, new long[] { 1 });

        Assert.Equal(BackendKind.Native, scaled.Backend);
        Assert.Equal(new double[] { 3, 6 }, scaled.Y.ToArray());
        Assert.Equal((BackendKind.Native, 6.0), (looked.Backend, looked.Values.Span[0]));
        Assert.Equal(FixturePath, services.GetRequiredService<INativeLibraryAdmin>().Libraries[1].Path);
    }

    [Fact]
    public void Libraries_ListsEachLibraryWithTheKernelsItServes()
    {
        using var services = CreateSut(FixturePath);

        var libraries = services.GetRequiredService<INativeLibraryAdmin>().Libraries;

        Assert.Collection(
            libraries,
            tandem =>
            {
                Assert.Equal("tandem", tandem.Name);
                Assert.Contains(KernelContracts.HashBlake3, tandem.Kernels);
                Assert.DoesNotContain(FixtureKernels.FixtureScale.Name, tandem.Kernels);
            },
            fixture =>
            {
                Assert.Equal(FixtureName, fixture.Name);
                Assert.Equal(FixturePath, fixture.Path);
                Assert.Equal([FixtureKernels.FixtureBytesum.Name, FixtureKernels.FixtureLookup.Name, FixtureKernels.FixtureScale.Name], fixture.Kernels);
                Assert.Null(fixture.Error);
            });
    }

    [Fact]
    public void AddKernelLibrary_ByName_FoundNextToTheApplication()
    {
        // The cdylib's name without lib and .so, as a package's runtimes/<rid>/native asset is named.
        using var services = CreateSut("tandem_fixture_kernels");

        var fixture = services.GetRequiredService<INativeLibraryAdmin>().Libraries[1];

        Assert.Equal(FixturePath, fixture.Path);
        Assert.Null(fixture.Error);
    }

    [Fact]
    public void Resolve_NameUnderRuntimesRidNative_FoundThere()
    {
        // Where a build without a runtime identifier leaves a package's native assets.
        var directory = Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native");
        var name = $"tandem_locator_{Guid.NewGuid():N}";
        var file = Path.Combine(directory, $"lib{name}.so");
        Directory.CreateDirectory(directory);
        File.Copy(FixturePath, file);
        try
        {
            Assert.Equal(file, KernelLibraryLocator.Resolve(name, out _));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void AddKernelLibrary_MissingLibrary_StartupFailsNamingItAndWhereItLooked()
    {
        using var services = CreateSut("no_such_kernels");

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("kernel library 'no_such_kernels' was not found", error.Message);
        Assert.Contains(Path.Combine(AppContext.BaseDirectory, "libno_such_kernels.so"), error.Message);
    }

    [Fact]
    public void AddKernelLibrary_FileThatIsNotATandemLibrary_StartupFailsNamingIt()
    {
        var notTandem = Path.Combine(_directory.FullName, "libnot_tandem.so");
        File.Copy(NativeLibraryPathOfLibc(), notTandem);
        using var services = CreateSut(notTandem);

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains($"'{notTandem}'", error.Message);
        Assert.Contains("not a Tandem kernel library", error.Message);
    }

    [Fact]
    public void AddKernelLibrary_TwoLibrariesPublishTheSameKernel_StartupFailsNamingBoth()
    {
        var clash = LoadableCopy("clash");
        using var services = CreateSut(clash);

        var error = WithFixtureMode("clash", () => Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate()));

        Assert.Contains("kernel 'similarity.topk' is published by two kernel libraries", error.Message);
        Assert.Contains("'tandem'", error.Message);
        Assert.Contains($"'{FixtureName}' ({clash})", error.Message);
    }

    [Fact]
    public void Kernel_TwoLibrariesPublishIt_RefusedOnNativeNamingBothWhileTheOthersServe()
    {
        // Without startup validation (a plain service provider), the set refuses the clash itself.
        var clash = LoadableCopy("clash");
        using var set = new NativeLibrarySet(() => NativeLibraryFixture.Runtime, new FixedOptions(new TandemOptions { KernelLibraries = [clash] }), NullLogger.Instance, TimeProvider.System, [.. KernelContracts.All, .. FixtureKernels.Contracts.Kernels.Select(k => k.Descriptor)]);

        WithFixtureMode("clash", () => set.Libraries.Count);

        Assert.Null(set.Kernel(KernelContracts.SimilarityTopK, out var refusal));
        Assert.Equal(TandemStatusCode.FailedPrecondition, refusal!.Code);
        Assert.Contains("published by two kernel libraries", refusal.Message);
        Assert.Contains(clash, refusal.Message);
        Assert.NotNull(set.Kernel(KernelContracts.HashBlake3, out _));
        Assert.NotNull(set.Kernel(FixtureKernels.FixtureScale.Name, out _));
    }

    [Fact]
    public async Task HotSwapAsync_OneLibrary_SwapsItAloneAndBothKeepServing()
    {
        using var services = CreateSut(FixturePath, hotSwap: true);
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var invoker = services.GetRequiredService<IKernelInvoker>();
        var request = () => new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 3 }, 1).Param("factor", 2.0);
        _ = await invoker.InvokeAsync(request());

        var swapped = await admin.HotSwapAsync(FixtureName, LoadableCopy("next"));

        Assert.Equal(2, swapped.Generation);
        Assert.Equal(FixtureName, swapped.Name);
        Assert.Equal(1, admin.Current.Generation);
        Assert.Equal([1L, 2L], admin.Libraries.Select(l => l.Generation));
        Assert.Equal(6.0, (await invoker.InvokeAsync(request())).Output<double>(0).Span[0]);
        Assert.Equal(32, services.GetRequiredService<IBlake3Hashing>().Hash("abc"u8).Length);
    }

    [Fact]
    public async Task HotSwapAsync_BuildOfAnotherLibrary_RefusedAndTheCurrentKeepsServing()
    {
        using var services = CreateSut(FixturePath, hotSwap: true);
        var admin = services.GetRequiredService<INativeLibraryAdmin>();

        var error = await Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(FixtureName, NativeLibraryFixture.Runtime.LibraryPath!).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains($"it is library 'tandem', not '{FixtureName}'", error.Message);
        Assert.Equal(1, admin.Libraries[1].Generation);
    }

    [Fact]
    public async Task HotSwapAsync_NewBuildPublishesAnotherLibrarysKernel_Refused()
    {
        using var services = CreateSut(FixturePath, hotSwap: true);
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        _ = admin.Libraries;
        var clash = LoadableCopy("clash-swap");

        var error = await WithFixtureMode("clash", () => Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(FixtureName, clash).AsTask()));

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("kernel 'similarity.topk' is published by two kernel libraries", error.Message);
        Assert.Equal(1, admin.Libraries[1].Generation);
    }

    [Fact]
    public async Task HotSwapAsync_UnknownLibraryName_NotFoundListingTheLoadedOnes()
    {
        using var services = CreateSut(FixturePath, hotSwap: true);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<INativeLibraryAdmin>().HotSwapAsync("ewma", FixturePath).AsTask());

        Assert.Equal(TandemStatusCode.NotFound, error.Code);
        Assert.Contains("no kernel library named 'ewma'", error.Message);
        Assert.Contains($"'{FixtureName}'", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public void KernelLibraries_EmptyEntry_StartupFails(string library)
    {
        using var services = new ServiceCollection().AddTandem(o => o.KernelLibraries.Add(library)).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("Tandem:KernelLibraries entries must be a path or a library name", error.Message);
    }

    [Fact]
    public void KernelLibraries_MoreThanTheLimit_StartupFailsNamingIt()
    {
        using var services = new ServiceCollection().AddTandem(o => o.KernelLibraries = [.. Enumerable.Range(0, KernelLibraryLocator.MaxLibraries + 1).Select(i => $"lib{i}")]).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains($"at most {KernelLibraryLocator.MaxLibraries}", error.Message);
    }

    private static ServiceProvider CreateSut(string library, bool hotSwap = false) =>
        new ServiceCollection()
            .AddTandem(o =>
            {
                o.FallbackToManaged = false;
                o.NativeHotSwap = hotSwap;
            })
            .AddKernelLibrary(library)
            .AddKernelContracts(FixtureKernels.Contracts)
            .AddManagedKernel<ScaleTwin>()
            .AddManagedKernel<LookupTwin>()
            .AddManagedKernel<ByteSumTwin>()
            .AddManagedStateKind<TableTwin>()
            .BuildServiceProvider();

    /// <summary>A copy of the fixture library under its own name, so the loader maps it anew and its registration reads the mode in force.</summary>
    private string LoadableCopy(string name)
    {
        var copy = Path.Combine(_directory.FullName, $"libtandem_fixture_kernels.{name}.so");
        File.Copy(FixturePath, copy);
        return copy;
    }

    private static T WithFixtureMode<T>(string mode, Func<T> action)
    {
        _ = setenv("TANDEM_FIXTURE_MODE", mode, 1);
        try
        {
            return action();
        }
        finally
        {
            _ = unsetenv("TANDEM_FIXTURE_MODE");
        }
    }

    private static async Task<T> WithFixtureMode<T>(string mode, Func<Task<T>> action)
    {
        _ = setenv("TANDEM_FIXTURE_MODE", mode, 1);
        try
        {
            return await action();
        }
        finally
        {
            _ = unsetenv("TANDEM_FIXTURE_MODE");
        }
    }

    private static string NativeLibraryPathOfLibc() =>
        new[] { "/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/libc.so.6" }.First(File.Exists);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unsetenv(string name);

    private sealed class FixedOptions(TandemOptions value) : IOptionsMonitor<TandemOptions>
    {
        public TandemOptions CurrentValue => value;

        public TandemOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<TandemOptions, string?> listener) => null;
    }
}
