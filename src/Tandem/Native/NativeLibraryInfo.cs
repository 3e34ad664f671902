namespace Tandem.Native;

/// <summary>One loaded build of the native library.</summary>
/// <param name="Path">The file it was loaded from (the path given to the swap), or null when none was found.</param>
/// <param name="AbiMajor">Major ABI version it speaks (0 when it is not loaded).</param>
/// <param name="AbiMinor">Minor ABI version it speaks.</param>
/// <param name="Generation">1 for the library loaded at startup, one more for each hot swap.</param>
/// <param name="LoadedAt">When it was loaded.</param>
/// <param name="Error">Why the library is unusable (the managed backend serves instead), or null.</param>
public sealed record NativeLibraryInfo(string? Path, int AbiMajor, int AbiMinor, long Generation, DateTimeOffset LoadedAt, string? Error);
