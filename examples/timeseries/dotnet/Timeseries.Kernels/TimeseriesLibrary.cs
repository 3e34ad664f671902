namespace Timeseries.Kernels;

/// <summary>Where the kernel library is at run time.</summary>
public static class TimeseriesLibrary
{
    /// <summary>libtimeseries_kernels.so, which this project copies next to every app that references it.</summary>
    public static string Path { get; } = System.IO.Path.Combine(AppContext.BaseDirectory, "libtimeseries_kernels.so");
}
