namespace Tandem.Native;

/// <summary>
/// Operates the in-process native library (libtandem.so): which build serves
/// calls, and replacing it while the application runs (hot swap). Meant for an
/// operator endpoint, not for application code.
/// </summary>
public interface INativeLibraryAdmin
{
    /// <summary>The library new native calls run on.</summary>
    NativeLibraryInfo Current { get; }

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
