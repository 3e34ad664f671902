namespace Tandem.Native;

/// <summary>
/// Operates the in-process native kernel libraries (libtandem.so and those of
/// <see cref="TandemOptions.KernelLibraries"/>): which build of each serves
/// calls, and replacing one while the application runs (hot swap). Meant for
/// an operator endpoint, not for application code.
/// </summary>
public interface INativeLibraryAdmin
{
    /// <summary>The build of libtandem.so new native calls run on.</summary>
    NativeLibraryInfo Current { get; }

    /// <summary>Every kernel library in process, libtandem.so first, then <see cref="TandemOptions.KernelLibraries"/> in order.</summary>
    IReadOnlyList<NativeLibraryInfo> Libraries { get; }

    /// <summary>
    /// Hot-swaps the kernel library named <paramref name="library"/> (its
    /// <see cref="NativeLibraryInfo.Name"/>) to the build at
    /// <paramref name="libraryPath"/>, exactly as <see cref="HotSwapAsync(string, CancellationToken)"/>
    /// does for libtandem.so; the other libraries are not touched.
    /// </summary>
    /// <exception cref="TandemException">
    /// NOT_FOUND when no library of that name is loaded; FAILED_PRECONDITION
    /// as for libtandem.so, and when the new build is another library or
    /// exports a kernel or state kind another library owns.
    /// </exception>
    ValueTask<NativeLibraryInfo> HotSwapAsync(string library, string libraryPath, CancellationToken cancellationToken = default);

    /// <summary>
    /// Loads the library at <paramref name="libraryPath"/> beside the current
    /// one, checks its ABI and every kernel descriptor, rebuilds every native
    /// state (vector collection) in it, then switches new calls to it at once.
    /// Calls and streams already running finish on the old library, whose
    /// states are freed when the last of them completes; no call fails.
    /// Swaps run one at a time.
    /// </summary>
    /// <param name="libraryPath">Path of the new build of libtandem.so; the file is copied, so it may be overwritten afterwards.</param>
    /// <param name="cancellationToken">Stops the swap before the switch; the current library keeps serving.</param>
    /// <returns>The library now serving.</returns>
    /// <exception cref="TandemException">
    /// FAILED_PRECONDITION when hot swap is disabled (<see cref="TandemOptions.NativeHotSwap"/>),
    /// the file is missing or not a loadable library, its ABI major differs,
    /// a kernel the current library serves would be refused by the new one, or
    /// a state cannot be rebuilt; the current library keeps serving in every case.
    /// </exception>
    ValueTask<NativeLibraryInfo> HotSwapAsync(string libraryPath, CancellationToken cancellationToken = default);
}
