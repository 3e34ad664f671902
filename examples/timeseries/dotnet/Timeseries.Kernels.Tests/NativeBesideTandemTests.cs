using Microsoft.Extensions.DependencyInjection;
using Tandem;
using Tandem.Kernels;
using Tandem.Native;

namespace Timeseries.Kernels.Tests;

/// <summary>
/// An app's host, set up the way an app sets it up: the timeseries library is
/// loaded in process beside libtandem.so, and both serve their kernels on
/// Native.
/// </summary>
public sealed class NativeBesideTandemTests
{
    [Fact]
    public async Task InvokeAsync_ReferenceAndUserKernel_BothServedOnNative()
    {
        await using var services = CreateSut();
        var kernels = services.GetRequiredService<IKernelInvoker>();
        var data = "timeseries beside tandem"u8.ToArray();

        var digest = await kernels.InvokeAsync(new KernelRequest("hash.blake3").Input<byte>(data, data.Length).OutputSymbol("output_len", 32));
        var ewma = await services.GetRequiredService<TimeseriesEwmaKernel>().InvokeAsync(new double[] { 1, 2, 3, 3 }, len: 4, alpha: 0.5);

        Assert.Equal(BackendKind.Native, digest.Backend);
        Assert.Equal("e800b9486791a49e03ac86394c94580ae04886f81032c40af23c42461eaa5b8a", Convert.ToHexStringLower(digest.Output<byte>("digest").Span));
        Assert.Equal(BackendKind.Native, ewma.Backend);
        Assert.Equal([1, 1.5, 2.25, 2.625], ewma.Y.ToArray());
    }

    [Fact]
    public async Task Libraries_TimeseriesLoaded_ListedAfterLibtandem()
    {
        await using var services = CreateSut();
        _ = services.GetRequiredService<IKernelInvoker>();

        var libraries = services.GetRequiredService<INativeLibraryAdmin>().Libraries;

        Assert.Equal([TimeseriesKernels.LibraryName], libraries.Skip(1).Select(l => l.Name));
        Assert.Contains(TimeseriesKernels.TimeseriesEwma.Name, libraries[1].Kernels);
    }

    [Fact]
    public async Task HotSwapAsync_TimeseriesLibrary_KeepsServingOnNative()
    {
        await using var services = CreateSut(o => o.NativeHotSwap = true);
        var ewma = services.GetRequiredService<TimeseriesEwmaKernel>();

        var swapped = await services.GetRequiredService<INativeLibraryAdmin>().HotSwapAsync(TimeseriesKernels.LibraryName, Path.Combine(AppContext.BaseDirectory, TimeseriesKernels.LibraryFile));
        var result = await ewma.InvokeAsync(new double[] { 1, 2 }, len: 2, alpha: 1);

        Assert.Equal(TimeseriesKernels.LibraryName, swapped.Name);
        Assert.Equal(BackendKind.Native, result.Backend);
        Assert.Equal([1, 2], result.Y.ToArray());
    }

    private static ServiceProvider CreateSut(Action<TandemOptions>? configure = null) => new ServiceCollection()
        .AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
            configure?.Invoke(o);
        })
        .AddTimeseriesKernels()
        .AddManagedKernel<EwmaTwin>()
        .BuildServiceProvider();
}
