namespace Tandem.Tests.Shared;

/// <summary>
/// A state repository directory of one test, under the temp directory,
/// removed with everything in it when disposed (published state files are
/// read-only, so they are made writable first). Linked into each test project.
/// </summary>
internal sealed class TempStateRepository : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"tandem-states-{Environment.ProcessId}-{Guid.NewGuid():N}");

    /// <summary>The file of (<paramref name="name"/>, <paramref name="version"/>).</summary>
    public string FileOf(string name, long version) => Path.Combine(Root, name, $"{version}.tstate");

    /// <summary>Flips one bit of a published file at <paramref name="offset"/> from its start (negative: from its end).</summary>
    public async Task CorruptAsync(string name, long version, int offset)
    {
        var file = FileOf(name, version);
        File.SetAttributes(file, FileAttributes.Normal);
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[offset < 0 ? bytes.Length + offset : offset] ^= 0x20;
        await File.WriteAllBytesAsync(file, bytes);
    }

    public void Dispose()
    {
        if (!Directory.Exists(Root))
        {
            return;
        }

        foreach (var file in Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories))
        {
            File.SetAttributes(file, FileAttributes.Normal);
        }

        Directory.Delete(Root, recursive: true);
    }
}
