using Tandem.Kernels;
using Timeseries.Kernels;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Declares the timeseries kernels to Tandem.</summary>
public static class TimeseriesServiceCollectionExtensions
{
    /// <summary>
    /// Declares the library's contracts, which were generated from it, and
    /// registers the managed twins. Call it after <c>AddTandem</c>. The library
    /// itself (<see cref="TimeseriesLibrary.Path"/>) is served in process by
    /// <c>TandemOptions.NativeLibraryPath</c>, and by workers by
    /// <c>RemoteOptions.KernelLibraries</c>.
    /// </summary>
    public static IServiceCollection AddTimeseriesKernels(this IServiceCollection services) => services
        .AddKernelContracts(TimeseriesKernels.Contracts)
        .AddManagedKernel<EwmaTwin>();
}
