using Microsoft.Extensions.DependencyInjection;
using Tandem.Kernels;
using Tandem.Testing.Tests.Fixtures;
using Tandem.Tests.Kernels;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Tandem.Testing.Tests;

/// <summary>
/// The kit's checks fail when they should: a wrong twin, a bad input the
/// kernel accepts, a backend that cannot serve the kernel. The derived
/// classes here are internal, so xunit does not run their inherited tests;
/// each test calls one check directly.
/// </summary>
public sealed class KitFailureTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AssertMatchesManaged_TwinOffByOne_FailsNamingSeedShapeAndFirstElement()
    {
        await using var sut = new CheckedScale<OffByOneScaleTwin>();

        var error = await Assert.ThrowsAnyAsync<XunitException>(() => sut.CheckMatchesManagedAsync(BackendKind.Native, seed: 42));

        Assert.Contains("fixture.scale on Native differs from its managed twin", error.Message);
        Assert.Contains("seed 42", error.Message);
        Assert.Contains("DrawCase(42)", error.Message);
        Assert.Contains("x f64[", error.Message);
        Assert.Contains("output y f64[", error.Message);
        Assert.Contains("differs at element 0 (index [0])", error.Message);
        Assert.Contains("tolerance: bitwise", error.Message);
        output.WriteLine(error.Message);
    }

    [Fact]
    public async Task AssertMatchesManaged_RightTwin_Passes()
    {
        await using var sut = new CheckedScale<ScaleTwin>();

        await sut.CheckMatchesManagedAsync(BackendKind.Native, seed: 42);
    }

    [Fact]
    public async Task RandomInputs_TwinOffByOneWithinATolerance_PassesAndBitwiseFails()
    {
        await using var tolerant = new CheckedScale<OffByOneScaleTwin>(tolerance: Tolerance.Relative(0, absolute: 1.5));
        await using var strict = new CheckedScale<OffByOneScaleTwin>();

        await tolerant.RandomInputs_MatchTheManagedTwin(BackendKind.Native);
        await Assert.ThrowsAnyAsync<XunitException>(() => strict.RandomInputs_MatchTheManagedTwin(BackendKind.Native));
    }

    [Fact]
    public async Task InvalidInputsAreRefused_ABadInputTheKernelAccepts_FailsNamingIt()
    {
        await using var sut = new CheckedScale<ScaleTwin>(extraInvalidInput: InvalidInput.Call(
            "a perfectly valid call",
            _ => new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1 }, 1)));

        var error = await Assert.ThrowsAnyAsync<XunitException>(() => sut.InvalidInputs_AreRefused(BackendKind.Native));

        Assert.Contains("1 of ", error.Message);
        Assert.Contains("a perfectly valid call: accepted, expected InvalidArgument", error.Message);
    }

    [Fact]
    public async Task RandomInputs_BackendLacksTheKernelAndFallbackConfigured_FailsInsteadOfRunningTheTwin()
    {
        // The user's configuration asks for fallback and loads no fixture library: the kit turns fallback off.
        await using var sut = new CheckedScale<ScaleTwin>(nativeLibrary: false);

        var error = await Assert.ThrowsAnyAsync<XunitException>(() => sut.CheckMatchesManagedAsync(BackendKind.Native, seed: 1));

        Assert.Contains("fixture.scale on Native refused a valid case", error.Message);
        Assert.Contains("FailedPrecondition", error.Message);
    }

    /// <summary>fixture.scale checked against <typeparamref name="TTwin"/> as its managed twin, on hosts of its own.</summary>
    private sealed class CheckedScale<TTwin> : KernelContractTests, IAsyncDisposable
        where TTwin : ManagedKernel
    {
        private readonly KernelTestHosts _hosts;
        private readonly Tolerance? _tolerance;
        private readonly InvalidInput? _extraInvalidInput;
        private readonly bool _nativeLibrary;

        public CheckedScale(Tolerance? tolerance = null, InvalidInput? extraInvalidInput = null, bool nativeLibrary = true)
            : this(new KernelTestHosts(), tolerance, extraInvalidInput, nativeLibrary)
        {
        }

        private CheckedScale(KernelTestHosts hosts, Tolerance? tolerance, InvalidInput? extraInvalidInput, bool nativeLibrary)
            : base(hosts)
        {
            _hosts = hosts;
            _tolerance = tolerance;
            _extraInvalidInput = extraInvalidInput;
            _nativeLibrary = nativeLibrary;
        }

        protected override string Kernel => FixtureKernels.FixtureScale.Name;

        protected override KernelContractSet Contracts => FixtureKernels.Contracts;

        public Task CheckMatchesManagedAsync(BackendKind backend, int seed) => AssertMatchesManagedAsync(backend, DrawCase(seed));

        public ValueTask DisposeAsync() => new(_hosts.DisposeAsync());

        protected override Tolerance ToleranceFor(TensorContract output) => _tolerance ?? base.ToleranceFor(output);

        protected override IEnumerable<InvalidInput> InvalidInputs(KernelCase valid) =>
            _extraInvalidInput is null ? base.InvalidInputs(valid) : base.InvalidInputs(valid).Append(_extraInvalidInput);

        protected override void ConfigureServices(IServiceCollection services, BackendKind backend)
        {
            if (backend == BackendKind.Managed)
            {
                services.AddManagedKernel<TTwin>();
            }
            else
            {
                services.AddManagedKernel<ScaleTwin>();
            }

            services.Configure<TandemOptions>(o =>
            {
                o.FallbackToManaged = true;
                o.NativeLibraryPath = _nativeLibrary ? FixtureLibrary.Path : null;
            });
        }
    }
}

/// <summary>A twin of fixture.scale with a bug: y = factor · x + 1.</summary>
public sealed class OffByOneScaleTwin() : ManagedKernel(FixtureKernels.FixtureScale.Name, FixtureKernels.FixtureScale.Hash)
{
    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
        var factor = call.FloatParam(FixtureKernels.FixtureScale.Params.Factor.Index);
        var x = call.Input<double>(0);
        var y = call.Output<double>(0);
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = (factor * x[i]) + 1;
        }
    }
}
