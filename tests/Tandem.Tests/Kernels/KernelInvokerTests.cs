using System.Buffers.Binary;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Kernels;
using Tandem.Pricing;

namespace Tandem.Tests.Kernels;

/// <summary>
/// The generic invoker on the reference kernels and on a kernel library that
/// is not Tandem's (the fixture library: its contracts generated as a user
/// generates them, its C# twins registered with AddManagedKernel).
/// </summary>
[Collection(FixtureLibraryCollection.Name)]
public sealed class KernelInvokerTests
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task InvokeAsync_FixtureScale_ScalesEveryRowOnTheConfiguredBackend(BackendKind backend)
    {
        using var services = CreateSut(o =>
        {
            o.Backend = backend;
            o.NativeLibraryPath = FixturePath;
        });
        var sut = services.GetRequiredService<IKernelInvoker>();

        var result = await sut.InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name)
            .Input<double>(new double[] { 1, -2, 0.5 }, 3)
            .Param("factor", 3.0));

        Assert.Equal(backend, result.Backend);
        Assert.Equal(new double[] { 3, -6, 1.5 }, result.Output<double>("y").ToArray());
        Assert.Equal([3L], result.ShapeOf("y"));
        Assert.Equal(backend == BackendKind.Managed ? 1 : 0, services.GetRequiredService<ScaleTwin>().Runs);
    }

    [Fact]
    public async Task InvokeAsync_ParamOmitted_TakesTheContractDefault()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);

        var result = await services.GetRequiredService<IKernelInvoker>().InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 4 }, 1));

        Assert.Equal(FixtureKernels.FixtureScale.Params.Factor.Default * 4, result.Output<double>(0).Span[0]);
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task InvokeAsync_ReferenceKernel_MatchesItsFacadeBitForBit(BackendKind backend)
    {
        using var services = CreateSut(o => o.Backend = backend);
        var sut = services.GetRequiredService<IKernelInvoker>();
        var option = new EuropeanOption(100, 95, 0.01, 0.2, 1, OptionKind.Call);

        var expected = await services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(new[] { option }, new MonteCarloSettings { Paths = 4096, Seed = 7 });
        var result = await sut.InvokeAsync(new KernelRequest(ReferenceKernels.MontecarloEuropean.Name)
            .Input<double>(new double[] { 100, 95, 0.01, 0.2, 1, 1 }, 1, 6)
            .Input<long>(new long[] { 0 }, 1)
            .Param("paths", 4096)
            .Param("seed", 7));

        Assert.Equal(backend, result.Backend);
        Assert.Equal(expected.Prices.ToArray(), result.Output<double>("price").ToArray());
        Assert.Equal(expected.StandardErrors.ToArray(), result.Output<double>("stderr").ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task InvokeAsync_ReferenceKernelOverAState_OutputSymbolGivenExplicitly(BackendKind backend)
    {
        using var services = CreateSut(o => o.Backend = backend);
        var sut = services.GetRequiredService<IKernelInvoker>();
        using var collection = await sut.CreateStateAsync(ReferenceKernels.StateKinds.VectorCollection.Name, [KernelTensor.Of<float>(new float[] { 1, 0, 0, 1, 1, 1 }, 3, 2), KernelTensor.Absent]);

        var result = await sut.InvokeAsync(new KernelRequest(ReferenceKernels.SimilarityTopk.Name) { State = collection }
            .Input<float>(new float[] { 1, 0 }, 1, 2)
            .Param("k", 2)
            .Param("metric", "dot")
            .OutputSymbol("k", 2));

        Assert.Equal(backend, collection.Backend);
        Assert.Equal(new long[] { 0, 2 }, result.Output<long>("ids").ToArray());
        Assert.Equal(new float[] { 1, 1 }, result.Output<float>("scores").ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task InvokeAsync_FixtureLookupOverAUserStateKind_ReadsTheState(BackendKind backend)
    {
        using var services = CreateSut(o =>
        {
            o.Backend = backend;
            o.NativeLibraryPath = FixturePath;
        });
        var sut = services.GetRequiredService<IKernelInvoker>();
        using var table = await sut.CreateStateAsync(FixtureKernels.StateKinds.FixtureTable.Name, [KernelTensor.Of<double>(new double[] { 10, 20, 30 }, 3)]);

        var result = await sut.InvokeAsync(new KernelRequest(FixtureKernels.FixtureLookup.Name) { State = table }.Input<long>(new long[] { 2, 0 }, 2));

        Assert.Equal(backend, table.Backend);
        Assert.Equal(new double[] { 30, 10 }, result.Output<double>(0).ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task OpenStreamAsync_FixtureByteSum_SumsEveryChunk(BackendKind backend)
    {
        using var services = CreateSut(o =>
        {
            o.Backend = backend;
            o.NativeLibraryPath = FixturePath;
        });

        await using var stream = await services.GetRequiredService<IKernelInvoker>().OpenStreamAsync(FixtureKernels.FixtureBytesum.Name);
        await stream.AppendAsync(new byte[] { 1, 2, 3 });
        await stream.AppendAsync(new byte[] { 250 });
        var sum = await stream.FinalizeAsync();

        Assert.Equal(backend, stream.Backend);
        Assert.Equal(256UL, BinaryPrimitives.ReadUInt64LittleEndian(sum));
        var again = await Assert.ThrowsAsync<TandemException>(() => stream.AppendAsync(new byte[] { 1 }).AsTask());
        Assert.Equal(TandemStatusCode.FailedPrecondition, again.Code);
    }

    [Fact]
    public async Task OpenStreamAsync_OutputLengthTheContractRefuses_InvalidArgumentNamingTheOutput()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);
        await using var stream = await services.GetRequiredService<IKernelInvoker>().OpenStreamAsync(ReferenceKernels.HashBlake3.Name);

        var error = await Assert.ThrowsAsync<TandemException>(() => stream.FinalizeAsync(new byte[(int)ReferenceKernels.HashBlake3.Limits.MaxOutputLen + 1]).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("output 'digest' must be 1 to 1048576 bytes long", error.Message);
    }

    [Fact]
    public async Task OpenStreamAsync_KernelThatDoesNotStream_Unimplemented()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IKernelInvoker>().OpenStreamAsync(FixtureKernels.FixtureScale.Name).AsTask());

        Assert.Equal(TandemStatusCode.Unimplemented, error.Code);
    }

    [Fact]
    public async Task InvokeAsync_NativeLibraryLacksTheKernel_RunsTheManagedTwin()
    {
        // libtandem.so publishes no fixture.scale: the twin serves it.
        using var services = CreateSut(o => o.Backend = BackendKind.Native);

        var result = await services.GetRequiredService<IKernelInvoker>().InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 2 }, 1).Param("factor", 5.0));

        Assert.Equal(BackendKind.Managed, result.Backend);
        Assert.Equal(10, result.Output<double>(0).Span[0]);
        Assert.Equal(1, services.GetRequiredService<ScaleTwin>().Runs);
    }

    [Fact]
    public async Task InvokeAsync_NativeLibraryLacksTheKernelWithoutFallback_FailedPrecondition()
    {
        using var services = CreateSut(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
        });

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IKernelInvoker>().InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 2 }, 1)).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Equal(FixtureKernels.FixtureScale.Name, error.Kernel);
    }

    [Fact]
    public async Task InvokeAsync_BackendFailsTheCall_FallsBackToTheManagedTwinAndCountsIt()
    {
        var remote = new FailingRemote();
        using var services = CreateSut(
            o =>
            {
                o.Backend = BackendKind.Remote;
                o.Resilience.MaxRetries = 0;
            },
            s => s.AddMetrics().AddSingleton<IRemoteBackendSource>(remote));
        using var fallbacks = new MetricCollector<long>(services.GetRequiredService<IMeterFactory>(), "Tandem", "tandem.fallbacks");

        var result = await services.GetRequiredService<IKernelInvoker>().InvokeAsync(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1, 2 }, 2).Param("factor", -1.0));

        Assert.Equal(new double[] { -1, -2 }, result.Output<double>(0).ToArray());
        Assert.Equal(1, remote.Attempts);
        Assert.Equal(1, services.GetRequiredService<ScaleTwin>().Runs);
        var hop = Assert.Single(fallbacks.GetMeasurementSnapshot());
        Assert.Equal("fixture.scale", hop.Tags["kernel"]);
        Assert.Equal("remote", hop.Tags["from"]);
        Assert.Equal("managed", hop.Tags["to"]);
        Assert.Equal("UNAVAILABLE", hop.Tags["reason"]);
    }

    [Fact]
    public async Task InvokeAsync_WrongDType_InvalidArgumentNamingTheTensor()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<float>(new float[] { 1 }, 1));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("tensor 'x' must be f64, got f32", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_WrongRank_InvalidArgumentNamingTheTensor()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1, 2 }, 1, 2));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("tensor 'x' must have rank 1, got rank 2", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_ShapeDisagreesWithData_InvalidArgumentNamingTheTensor()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1, 2 }, 3));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("tensor 'x' has 16 bytes but its shape of f64 needs 24", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_MissingInput_InvalidArgumentNamingTheCount()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("takes 1 input tensor(s), got 0", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_NonFiniteInput_InvalidArgumentNamingTheRow()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1, double.NaN }, 2));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("tensor 'x' row 1 contains NaN or infinity", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_UnknownParam_InvalidArgumentNamingItAndTheKnownOnes()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1 }, 1).Param("scale", 2.0));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("has no parameter 'scale'; it takes factor", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_ParamOutOfRange_InvalidArgumentNamingTheParam()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureScale.Name).Input<double>(new double[] { 1 }, 1).Param("factor", 1e7));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("parameter 'factor' must be in [-1000000, 1000000]", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_UnknownChoice_InvalidArgumentNamingTheChoices()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);
        var sut = services.GetRequiredService<IKernelInvoker>();
        using var collection = await sut.CreateStateAsync(ReferenceKernels.StateKinds.VectorCollection.Name, [KernelTensor.Of<float>(new float[] { 1, 0 }, 1, 2), KernelTensor.Absent]);

        var error = await Assert.ThrowsAsync<TandemException>(() => sut.InvokeAsync(new KernelRequest(ReferenceKernels.SimilarityTopk.Name) { State = collection }
            .Input<float>(new float[] { 1, 0 }, 1, 2)
            .Param("metric", "manhattan")
            .OutputSymbol("k", 1)).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("parameter 'metric' must be one of dot, cosine, l2, got 'manhattan'", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_OutputSymbolNotGiven_InvalidArgumentNamingTheSymbol()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(ReferenceKernels.HashBlake3.Name).Input<byte>(new byte[] { 1 }, 1));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("output 'digest' axis 0 ('output_len') is bound by no input", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_StatefulKernelWithoutState_InvalidArgumentNamingTheKind()
    {
        var error = await InvokeExpectingFailure(new KernelRequest(FixtureKernels.FixtureLookup.Name).Input<long>(new long[] { 0 }, 1));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("reads a 'fixture.table' state", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_UnknownKernel_NotFoundNamingIt()
    {
        var error = await InvokeExpectingFailure(new KernelRequest("fixture.nope"));

        Assert.Equal(TandemStatusCode.NotFound, error.Code);
        Assert.Contains("no kernel 'fixture.nope'", error.Message);
    }

    [Fact]
    public async Task CreateStateAsync_TensorOfWrongDType_InvalidArgumentNamingTheTensor()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IKernelInvoker>().CreateStateAsync(FixtureKernels.StateKinds.FixtureTable.Name, [KernelTensor.Of<float>(new float[] { 1 }, 1)]).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("tensor 'values' must be f64, got f32", error.Message);
    }

    [Fact]
    public async Task CreateStateAsync_UnknownKind_NotFound()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IKernelInvoker>().CreateStateAsync("fixture.nope", []).AsTask());

        Assert.Equal(TandemStatusCode.NotFound, error.Code);
    }

    [Fact]
    public void Kernels_ReferenceAndDeclared_BothListedWithTheirPublishedHashes()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);

        var kernels = services.GetRequiredService<IKernelInvoker>().Kernels;

        Assert.Contains(kernels, k => k.Name == ReferenceKernels.SimilarityTopk.Name && k.Hash == ReferenceKernels.SimilarityTopk.Hash);
        Assert.Contains(kernels, k => k.Name == FixtureKernels.FixtureScale.Name && k.Hash == FixtureKernels.FixtureScale.Hash);
    }

    private static async Task<TandemException> InvokeExpectingFailure(KernelRequest request)
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Managed);
        return await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<IKernelInvoker>().InvokeAsync(request).AsTask());
    }

    private static ServiceProvider CreateSut(Action<TandemOptions> configure, Action<IServiceCollection>? more = null)
    {
        var services = new ServiceCollection()
            .AddTandem(configure)
            .AddKernelContracts(FixtureKernels.Contracts)
            .AddManagedKernel<ScaleTwin>()
            .AddManagedKernel<LookupTwin>()
            .AddManagedKernel<ByteSumTwin>()
            .AddManagedStateKind<TableTwin>();
        more?.Invoke(services);
        return services.BuildServiceProvider();
    }

    private sealed class FailingRemote : IRemoteBackendSource, IKernelBackend
    {
        private int _attempts;

        public IKernelBackend Backend => this;

        public BackendKind Kind => BackendKind.Remote;

        public int Attempts => Volatile.Read(ref _attempts);

        public ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _attempts);
            return ValueTask.FromException(new TandemException(TandemStatusCode.Unavailable, "injected: no worker", call.Kernel, BackendKind.Remote));
        }

        public ValueTask<IKernelState> CreateStateAsync(string kind, KernelCall tensors, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<IKernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
