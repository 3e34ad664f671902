namespace Tandem.Soak;

/// <summary>
/// What the run may not leave behind once its service providers are
/// disposed: a worker process (by pid, and any tandem-worker child of the
/// driver found in /proc), a socket or temporary directory (everything
/// Tandem creates under this run's TMPDIR), or a shared-memory file (in the
/// run's region directory, or /dev/shm/tandem-&lt;driver pid&gt;-*).
/// </summary>
internal static class Leftovers
{
    public static List<string> Find(IReadOnlyDictionary<int, string> workers, string temporaryDirectory, string sharedMemoryDirectory)
    {
        var found = new List<string>();
        foreach (var (pid, name) in workers)
        {
            // A pid reused by an unrelated process is not ours: check the command.
            if (Posix.Stat(pid) is { Command: "tandem-worker" } stat)
            {
                found.Add($"worker {name} (pid {pid}) still exists in state {stat.State}");
            }
        }

        var self = Environment.ProcessId;
        foreach (var pid in Posix.Processes())
        {
            if (Posix.Stat(pid) is { Command: "tandem-worker" } stat && stat.ParentId == self && !workers.ContainsKey(pid))
            {
                found.Add($"tandem-worker pid {pid}, a child of the driver, still exists in state {stat.State}");
            }
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(temporaryDirectory, "*", SearchOption.AllDirectories))
        {
            found.Add($"temporary file or directory left: {entry}");
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(sharedMemoryDirectory))
        {
            found.Add($"shared-memory file left: {entry}");
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries("/dev/shm", $"tandem-{self}-*"))
        {
            found.Add($"shared-memory file left: {entry}");
        }

        return found;
    }
}
