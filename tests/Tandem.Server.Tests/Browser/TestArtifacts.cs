namespace Tandem.Server.Tests.Browser;

/// <summary>Where tests leave files for people to look at: <c>artifacts/</c> at the repository root (gitignored).</summary>
internal static class TestArtifacts
{
    private const string SolutionFile = "Tandem.slnx";

    /// <summary>The full path of <paramref name="fileName"/> under <c>artifacts/</c>, creating the folder.</summary>
    public static string PathOf(string fileName)
    {
        var directory = Path.Combine(RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(directory);
        return Path.Combine(directory, fileName);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(Path.GetDirectoryName(typeof(TestArtifacts).Assembly.Location)!); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, SolutionFile)))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no {SolutionFile} above {typeof(TestArtifacts).Assembly.Location}");
    }
}
