using System.Buffers.Binary;

namespace Tandem.Internal.Native;

/// <summary>
/// Checks that a shared library's file holds every byte its loadable
/// segments map, before the dynamic loader maps it: glibc's dlopen maps a
/// truncated library without complaint, and the first touch of a page past
/// the end of the file kills the whole process with SIGBUS.
/// </summary>
internal static class ElfImage
{
    private const int HeaderSize = 64;
    private const uint LoadSegment = 1;

    /// <summary>
    /// Throws <see cref="BadImageFormatException"/> naming the first segment
    /// that ends past the end of the file at <paramref name="path"/>. Files
    /// that are not 64-bit ELF are left to the loader, which refuses them itself.
    /// </summary>
    public static void CheckComplete(string path)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Unreadable here: the loader gives its own error.
            return;
        }

        using var _ = file;
        var length = file.Length;
        Span<byte> header = stackalloc byte[HeaderSize];
        var read = file.ReadAtLeast(header, HeaderSize, throwOnEndOfStream: false);
        if (read < 5 || header[0] != 0x7F || header[1] != (byte)'E' || header[2] != (byte)'L' || header[3] != (byte)'F' || header[4] != 2)
        {
            return;
        }

        if (read < HeaderSize)
        {
            throw Truncated(path, $"its ELF header needs {HeaderSize} bytes");
        }

        var tableOffset = BinaryPrimitives.ReadUInt64LittleEndian(header[0x20..]);
        var entrySize = BinaryPrimitives.ReadUInt16LittleEndian(header[0x36..]);
        var entries = BinaryPrimitives.ReadUInt16LittleEndian(header[0x38..]);
        if (entrySize < 0x28 || tableOffset + ((ulong)entrySize * entries) > (ulong)length)
        {
            throw Truncated(path, $"its program header table ({entries} entries at offset {tableOffset}) ends past the end of the file ({length} bytes)");
        }

        var table = new byte[entrySize * entries];
        file.Position = (long)tableOffset;
        file.ReadExactly(table);
        for (var i = 0; i < entries; i++)
        {
            var entry = table.AsSpan(i * entrySize, entrySize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(entry) != LoadSegment)
            {
                continue;
            }

            var offset = BinaryPrimitives.ReadUInt64LittleEndian(entry[0x08..]);
            var size = BinaryPrimitives.ReadUInt64LittleEndian(entry[0x20..]);
            if (offset + size < offset || offset + size > (ulong)length)
            {
                throw Truncated(path, $"its loadable segment {i} ends at byte {offset + size}, past the end of the file ({length} bytes)");
            }
        }
    }

    private static BadImageFormatException Truncated(string path, string why) =>
        new($"'{Path.GetFileName(path)}' is truncated: {why}; copy or build the library again");
}
