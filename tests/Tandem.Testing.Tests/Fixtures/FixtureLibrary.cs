namespace Tandem.Testing.Tests.Fixtures;

/// <summary>Where the tests find the fixture kernel library and tandem-worker.</summary>
internal static class FixtureLibrary
{
    /// <summary>libtandem_fixture_kernels.so, copied next to the tests.</summary>
    public static string Path { get; } = System.IO.Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");

    /// <summary>$TANDEM_WORKER_PATH, else the repository's release build.</summary>
    public static string WorkerPath => Environment.GetEnvironmentVariable("TANDEM_WORKER_PATH") is { Length: > 0 } path
        ? path
        : System.IO.Path.Combine(RepoRoot(), "native", "target", "release", "tandem-worker");

    private static string RepoRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "Tandem.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("the repository root (Tandem.slnx) was not found above the test binaries");
    }
}
