namespace Tandem.Tests.Shared;

/// <summary>Where test projects find what the repository's build produced (linked into each test project).</summary>
internal static class RepositoryPaths
{
    /// <summary>tandem-worker: $TANDEM_WORKER_PATH (the variable Tandem.Remote reads too), else the repository's release build.</summary>
    public static string WorkerPath => Environment.GetEnvironmentVariable("TANDEM_WORKER_PATH") is { Length: > 0 } path
        ? path
        : Path.Combine(Root(), "native", "target", "release", "tandem-worker");

    /// <summary>The directory holding Tandem.slnx above the test binaries.</summary>
    public static string Root()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Tandem.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("the repository root (Tandem.slnx) was not found above the test binaries");
    }
}
