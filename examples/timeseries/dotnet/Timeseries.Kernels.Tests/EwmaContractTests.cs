using Microsoft.Extensions.DependencyInjection;
using Tandem;
using Tandem.Kernels;
using Tandem.Remote;
using Tandem.Testing;

namespace Timeseries.Kernels.Tests;

/// <summary>
/// The contract of <c>timeseries.ewma</c>. Tandem.Testing's inherited tests
/// run it on Native (the .so beside libtandem.so) and Remote (a tandem-worker
/// started with <c>--kernels</c>) and compare it bit for bit with the managed
/// twin. The explicit tests call it through the generated facade on every
/// backend.
/// </summary>
public sealed class EwmaContractTests(KernelTestHosts hosts) : KernelContractTests(hosts)
{
    protected override string Kernel => TimeseriesKernels.TimeseriesEwma.Name;

    protected override KernelContractSet Contracts => TimeseriesKernels.Contracts;

    protected override void ConfigureServices(IServiceCollection services, BackendKind backend)
    {
        services.AddTimeseriesKernels().AddManagedKernel<EwmaTwin>();
        if (backend == BackendKind.Remote)
        {
            // The pool finds tandem-worker next to the tests, where the Tandem.Remote package put it.
            services.AddTandemRemote(o =>
            {
                o.WorkerCount = 1;
                o.KernelLibraries.Add("timeseries_kernels");
            });
        }
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Remote)]
    public async Task InvokeAsync_KnownRow_WritesItsMovingAverage(BackendKind backend)
    {
        var ewma = new TimeseriesEwmaKernel(await InvokerAsync(backend));

        var result = await ewma.InvokeAsync(new double[] { 1, 2, 3, 3 }, len: 4, alpha: 0.5);

        Assert.Equal(backend, result.Backend);
        Assert.Equal((1L, 4L), (result.Batch, result.Len));
        Assert.Equal([1, 1.5, 2.25, 2.625], result.Y.ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Remote)]
    public async Task InvokeAsync_TwoRows_EachStartsAfresh(BackendKind backend)
    {
        var ewma = new TimeseriesEwmaKernel(await InvokerAsync(backend));

        var result = await ewma.InvokeAsync(new double[] { 10, 20, 100, 200 }, len: 2, alpha: 0.5);

        Assert.Equal(backend, result.Backend);
        Assert.Equal([10, 15, 100, 150], result.Y.ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Remote)]
    public async Task InvokeAsync_LargeBatch_SameBitsAsTheManagedTwin(BackendKind backend)
    {
        // 200 × 64 doubles is 100 KiB, larger than the kit draws, so Remote sends it through shared memory.
        var random = new Random(11);
        var x = new double[200 * 64];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (i % 64 == 0 ? 100 : x[i - 1]) + random.NextDouble() - 0.5;
        }

        var expected = await new TimeseriesEwmaKernel(await InvokerAsync(BackendKind.Managed)).InvokeAsync(x, len: 64, alpha: 0.07);
        var actual = await new TimeseriesEwmaKernel(await InvokerAsync(backend)).InvokeAsync(x, len: 64, alpha: 0.07);

        Assert.Equal(backend, actual.Backend);
        Assert.Equal(Bits(expected.Y), Bits(actual.Y));
    }

    [Theory]
    [InlineData(BackendKind.Managed, 0.0)]
    [InlineData(BackendKind.Native, 0.0)]
    [InlineData(BackendKind.Remote, 0.0)]
    [InlineData(BackendKind.Native, 1.5)]
    public async Task InvokeAsync_AlphaOutsideItsRange_InvalidArgumentNamingAlpha(BackendKind backend, double alpha)
    {
        var ewma = new TimeseriesEwmaKernel(await InvokerAsync(backend));

        var error = await Assert.ThrowsAsync<TandemException>(async () => await ewma.InvokeAsync(new double[] { 1, 2 }, len: 2, alpha: alpha));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'alpha'", error.Message);
    }

    private static long[] Bits(ReadOnlyMemory<double> values) => Array.ConvertAll(values.ToArray(), BitConverter.DoubleToInt64Bits);
}
