using Tandem;
using Tandem.Kernels;

namespace Timeseries.Kernels.Tests;

/// <summary>
/// Calls <c>timeseries.ewma</c> through the generic invoker. It stands in for
/// the typed facade that tandem-generate will write; once that exists, tests
/// call the facade instead.
/// </summary>
internal static class Ewma
{
    public static async Task<(double[] Y, BackendKind Backend)> InvokeAsync(IKernelInvoker kernels, double[] x, int batch, double alpha)
    {
        var result = await kernels.InvokeAsync(new KernelRequest(TimeseriesKernels.TimeseriesEwma.Name)
            .Input<double>(x, batch, x.Length / batch)
            .Param(TimeseriesKernels.TimeseriesEwma.Params.Alpha.Index, alpha));
        return (result.Output<double>("y").ToArray(), result.Backend);
    }
}
