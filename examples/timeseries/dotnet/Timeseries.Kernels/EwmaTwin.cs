using Tandem.Kernels;

namespace Timeseries.Kernels;

/// <summary>
/// The managed twin of <c>timeseries.ewma</c>. Tandem falls back to it when the
/// kernel library or the workers can't serve a call, and the tests compare the
/// Rust kernel with it. It performs the same operations in the same order as
/// <c>ewma_rows</c> in native/src/lib.rs, so the two produce the same bits.
/// </summary>
public sealed class EwmaTwin() : ManagedKernel(TimeseriesKernels.TimeseriesEwma.Name, TimeseriesKernels.TimeseriesEwma.Hash)
{
    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
        var alpha = call.FloatParam(TimeseriesKernels.TimeseriesEwma.Params.Alpha.Index);
        var x = call.Input<double>(0);
        var y = call.Output<double>(0);
        var len = (int)call.InputDim(0, 1);
        if (len == 0)
        {
            return;
        }

        for (var row = 0; row < x.Length; row += len)
        {
            var average = x[row];
            y[row] = average;
            for (var t = 1; t < len; t++)
            {
                average += alpha * (x[row + t] - average);
                y[row + t] = average;
            }
        }
    }
}
