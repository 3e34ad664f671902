using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Server.Collections;

/// <summary>Vectors read from a binary upload, row-major.</summary>
internal sealed record UploadedVectors(float[] Values, int Dimension);

/// <summary>
/// Reads collection uploads in their binary forms: raw little-endian f32
/// (the dimension given separately) and NumPy <c>.npy</c> files (2-D,
/// C order, <c>&lt;f4</c> or <c>&lt;f8</c>). Every malformed or truncated
/// body fails with INVALID_ARGUMENT before a collection exists.
/// </summary>
internal static partial class VectorUploads
{
    private const string Kernel = "similarity.topk";
    // Byte 0x93, not the UTF-8 string "\x93" (which would be C2 93).
    private static ReadOnlySpan<byte> NpyMagic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads raw little-endian f32 values, <paramref name="dimension"/> per row.</summary>
    public static async ValueTask<UploadedVectors> ReadRawAsync(Stream body, long? contentLength, int dimension, CancellationToken cancellationToken)
    {
        if (dimension <= 0)
        {
            throw Invalid($"query parameter 'dimension' must be a positive number of components per vector, got {dimension}");
        }

        var rowBytes = 4L * dimension;
        if (contentLength is { } length && length % rowBytes != 0)
        {
            throw Invalid($"the body has {length} bytes, which is not a whole number of rows of {dimension} f32 values ({rowBytes} bytes each)");
        }

        var bytes = await ReadAllAsync(body, contentLength, cancellationToken);
        if (bytes.Length == 0)
        {
            throw Invalid("the body is empty; a collection needs at least one vector");
        }

        if (bytes.Length % rowBytes != 0)
        {
            throw Invalid($"the body has {bytes.Length} bytes, which is not a whole number of rows of {dimension} f32 values ({rowBytes} bytes each)");
        }

        return new UploadedVectors(ToFloats(bytes, bytes.Length, isDouble: false), dimension);
    }

    /// <summary>Reads a NumPy <c>.npy</c> file holding a 2-D float32 or float64 array in C order.</summary>
    public static async ValueTask<UploadedVectors> ReadNpyAsync(Stream body, long maxBytes, CancellationToken cancellationToken)
    {
        var prefix = new byte[12];
        var read = await body.ReadAtLeastAsync(prefix.AsMemory(0, 10), 10, throwOnEndOfStream: false, cancellationToken);
        if (read < 10 || !prefix.AsSpan(0, 6).SequenceEqual(NpyMagic))
        {
            throw Invalid("the body is not a .npy file (it must start with \\x93NUMPY); save the array with numpy.save");
        }

        var major = prefix[6];
        int headerLength;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix.AsSpan(8, 2));
        }
        else if (major is 2 or 3)
        {
            await ReadExactlyAsync(body, prefix.AsMemory(10, 2), "the .npy header", cancellationToken);
            var declared = BinaryPrimitives.ReadUInt32LittleEndian(prefix.AsSpan(8, 4));
            headerLength = declared > 1 << 20 ? throw Invalid($"the .npy header claims {declared} bytes; headers are a few hundred") : (int)declared;
        }
        else
        {
            throw Invalid($".npy format version {major}.{prefix[7]} is not supported; use version 1.0, 2.0 or 3.0");
        }

        var header = new byte[headerLength];
        await ReadExactlyAsync(body, header, "the .npy header", cancellationToken);
        var (isDouble, rows, dimension) = ParseHeader(Encoding.UTF8.GetString(header));
        var itemBytes = isDouble ? 8L : 4L;
        // Checked before allocating (division first, so a huge shape cannot
        // overflow): the header alone must not make the server commit memory.
        if (rows > Array.MaxLength / dimension / itemBytes)
        {
            throw Invalid($"the array of shape ({rows}, {dimension}) is too large for one collection; split it");
        }

        if (rows * dimension * itemBytes > maxBytes)
        {
            throw Api.RequestBodies.TooLarge(maxBytes);
        }

        var dataBytes = rows * dimension * itemBytes;
        var data = GC.AllocateUninitializedArray<byte>((int)dataBytes);
        await ReadExactlyAsync(body, data, $"the array data of shape ({rows}, {dimension})", cancellationToken);
        if (await body.ReadAsync(new byte[1], cancellationToken) != 0)
        {
            throw Invalid($"the body continues past the array data of shape ({rows}, {dimension}); send exactly one .npy file");
        }

        return new UploadedVectors(ToFloats(data, data.Length, isDouble), dimension);
    }

    private static (bool IsDouble, long Rows, int Dimension) ParseHeader(string header)
    {
        var descr = DescrPattern().Match(header);
        var order = FortranPattern().Match(header);
        var shape = ShapePattern().Match(header);
        if (!descr.Success || !order.Success || !shape.Success)
        {
            throw Invalid("the .npy header is malformed (it needs 'descr', 'fortran_order' and 'shape'); save the array with numpy.save");
        }

        var isDouble = descr.Groups[1].Value switch
        {
            "<f4" => false,
            "<f8" => true,
            var other => throw Invalid($"the .npy array has dtype '{other}'; send little-endian float32 ('<f4') or float64 ('<f8'), for example array.astype('<f4')"),
        };
        if (order.Groups[1].Value == "True")
        {
            throw Invalid("the .npy array is in Fortran order; save it in C order, for example numpy.ascontiguousarray(array)");
        }

        var dims = shape.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (dims.Length != 2
            || !long.TryParse(dims[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rows)
            || !int.TryParse(dims[1], NumberStyles.None, CultureInfo.InvariantCulture, out var dimension))
        {
            throw Invalid($"the .npy array has shape ({shape.Groups[1].Value}); send a 2-D array of shape (vectors, dimension)");
        }

        if (rows == 0 || dimension == 0)
        {
            throw Invalid($"the .npy array of shape ({rows}, {dimension}) is empty; a collection needs at least one vector of at least one component");
        }

        return (isDouble, rows, dimension);
    }

    private static async ValueTask<byte[]> ReadAllAsync(Stream body, long? contentLength, CancellationToken cancellationToken)
    {
        if (contentLength is { } length)
        {
            if (length > Array.MaxLength)
            {
                throw Invalid($"the body of {length} bytes is too large for one collection; split it");
            }

            var exact = GC.AllocateUninitializedArray<byte>((int)length);
            await ReadExactlyAsync(body, exact, "the body", cancellationToken);
            return exact;
        }

        // Chunked: grow by doubling; the stream's own limit bounds the size.
        var buffer = new byte[1 << 16];
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                var grown = GC.AllocateUninitializedArray<byte>((int)Math.Min((long)buffer.Length * 2, Array.MaxLength));
                buffer.AsSpan(0, filled).CopyTo(grown);
                buffer = grown;
            }

            var read = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken);
            if (read == 0)
            {
                return buffer.AsSpan(0, filled).ToArray();
            }

            filled += read;
        }
    }

    private static async ValueTask ReadExactlyAsync(Stream body, Memory<byte> buffer, string what, CancellationToken cancellationToken)
    {
        var read = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        if (read < buffer.Length)
        {
            throw Invalid($"the body ended inside {what}: got {read} of {buffer.Length} bytes; the upload was truncated");
        }
    }

    private static float[] ToFloats(byte[] bytes, int length, bool isDouble)
    {
        if (!isDouble)
        {
            var values = MemoryMarshal.Cast<byte, float>(bytes.AsSpan(0, length)).ToArray();
            if (!BitConverter.IsLittleEndian)
            {
                var raw = MemoryMarshal.Cast<float, int>(values.AsSpan());
                BinaryPrimitives.ReverseEndianness(raw, raw);
            }

            return values;
        }

        var doubles = new float[length / 8];
        for (var i = 0; i < doubles.Length; i++)
        {
            doubles[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(i * 8, 8));
        }

        return doubles;
    }

    private static TandemException Invalid(string message) => new(TandemStatusCode.InvalidArgument, message, Kernel);

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
