namespace Tandem.Testing.Tests.Fixtures;

/// <summary>Where the tests find the fixture kernel library and tandem-worker.</summary>
internal static class FixtureLibrary
{
    /// <summary>libtandem_fixture_kernels.so, copied next to the tests.</summary>
    public static string Path { get; } = System.IO.Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");

    /// <summary>$TANDEM_WORKER_PATH, else the repository's release build.</summary>
    public static string WorkerPath => Tandem.Tests.Shared.RepositoryPaths.WorkerPath;
}
