using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>
/// Finds the file of a kernel library named in <see cref="TandemOptions.KernelLibraries"/>:
/// a path is taken as it is (relative to the application's directory), a
/// bare name (<c>ewma</c>, <c>libewma.so</c>) is looked for next to the
/// application, then where NuGet's <c>runtimes/&lt;rid&gt;/native</c> assets
/// land: the native search directories the host read from the app's
/// deps.json, and the app's own <c>runtimes/</c> folder (a build without a
/// runtime identifier keeps them there).
/// </summary>
internal static class KernelLibraryLocator
{
    /// <summary>At most this many kernel libraries beside libtandem.so.</summary>
    public const int MaxLibraries = 64;

    /// <summary>The file <paramref name="library"/> names, or null with every place looked in.</summary>
    public static string? Resolve(string library, out IReadOnlyList<string> searched)
    {
        if (IsPath(library))
        {
            var path = Path.GetFullPath(library, AppContext.BaseDirectory);
            searched = [path];
            return File.Exists(path) ? path : null;
        }

        var candidates = new List<string>();
        foreach (var directory in Directories())
        {
            foreach (var file in FileNames(library))
            {
                var path = Path.Combine(directory, file);
                if (!candidates.Contains(path, StringComparer.Ordinal))
                {
                    candidates.Add(path);
                }

                if (File.Exists(path))
                {
                    searched = candidates;
                    return Path.GetFullPath(path);
                }
            }
        }

        searched = candidates;
        return null;
    }

    /// <summary>Why <paramref name="library"/> was not found: every place <see cref="Resolve"/> looked.</summary>
    public static string NotFound(string library, IReadOnlyList<string> searched) =>
        $"kernel library '{library}' was not found; looked for {string.Join(", ", searched)}";

    /// <summary>A value with a directory separator is a path; anything else is a name.</summary>
    public static bool IsPath(string library) => library.Contains('/', StringComparison.Ordinal);

    /// <summary><c>ewma</c> is <c>libewma.so</c> (the cdylib's name) or <c>ewma.so</c>; a name ending in .so is taken as it is.</summary>
    private static IEnumerable<string> FileNames(string name) =>
        name.EndsWith(".so", StringComparison.Ordinal) ? [name] : [$"lib{name}.so", $"{name}.so"];

    private static IEnumerable<string> Directories()
    {
        var app = AppContext.BaseDirectory;
        yield return app;
        // Filled by the host from deps.json: where a package's runtimes/<rid>/native assets resolved to.
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string directories)
        {
            foreach (var directory in directories.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                yield return directory;
            }
        }

        foreach (var rid in RuntimeIdentifiers())
        {
            yield return Path.Combine(app, "runtimes", rid, "native");
        }
    }

    /// <summary>The process's runtime identifier, then the portable one NuGet packages use.</summary>
    private static IEnumerable<string> RuntimeIdentifiers()
    {
        var rid = RuntimeInformation.RuntimeIdentifier;
        yield return rid;
        var architecture = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        if (OperatingSystem.IsLinux() && rid != $"linux-{architecture}")
        {
            yield return $"linux-{architecture}";
        }
    }
}
