namespace Tandem.Native;

/// <summary>One loaded build of a native kernel library.</summary>
/// <param name="Path">The file it was loaded from (the path given to the swap), or null when none was found.</param>
/// <param name="AbiMajor">Major ABI version it speaks (0 when it is not loaded).</param>
/// <param name="AbiMinor">Minor ABI version it speaks.</param>
/// <param name="Generation">1 for the library loaded at startup, one more for each hot swap.</param>
/// <param name="LoadedAt">When it was loaded.</param>
/// <param name="Error">Why the library is unusable (the managed backend serves instead), or null.</param>
public sealed record NativeLibraryInfo(string? Path, int AbiMajor, int AbiMinor, long Generation, DateTimeOffset LoadedAt, string? Error)
{
    /// <summary>The name the library gives itself (its crate's), or null when it is not loaded.</summary>
    public string? Name { get; init; }

    /// <summary>The library's own version, or null when it is not loaded.</summary>
    public string? Version { get; init; }

    /// <summary>The kernels it serves in this process: those whose descriptor matches the contract this application declares.</summary>
    public IReadOnlyList<string> Kernels { get; init; } = [];
}
