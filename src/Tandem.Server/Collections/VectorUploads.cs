using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Tandem.Server.Collections;

/// <summary>Vectors read from a binary upload, row-major (the memory may be longer than the values).</summary>
internal sealed record UploadedVectors(ReadOnlyMemory<float> Values, int Dimension);

/// <summary>
/// Reads collection uploads in their binary forms: raw little-endian f32
/// (the dimension given separately) and NumPy <c>.npy</c> files (2-D,
/// C order, <c>&lt;f4</c> or <c>&lt;f8</c>). The body is read in pooled
/// chunks straight into the final float buffer (float64 converted chunk by
/// chunk), which grows with what has actually arrived, never with what a
/// header declares; the collection budget is reserved before the buffer
/// grows. Every malformed or truncated body fails with INVALID_ARGUMENT
/// before a collection exists.
/// </summary>
internal static partial class VectorUploads
{
    private const string Kernel = "similarity.topk";
    private const int ScratchBytes = 64 << 10;
    private const int MinCapacity = ScratchBytes / sizeof(float);
    // Byte 0x93, not the UTF-8 string "\x93" (which would be C2 93).
    private static ReadOnlySpan<byte> NpyMagic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads raw little-endian f32 values, <paramref name="dimension"/> per row, outside any budget.</summary>
    public static ValueTask<UploadedVectors> ReadRawAsync(Stream body, long? contentLength, int dimension, CancellationToken cancellationToken) =>
        ReadRawAsync(body, contentLength, dimension, reservation: null, cancellationToken);

    /// <summary>
    /// Reads raw little-endian f32 values, <paramref name="dimension"/> per row.
    /// A declared <paramref name="contentLength"/> is reserved in full before
    /// anything is read; without one, the reservation grows with the buffer.
    /// </summary>
    public static async ValueTask<UploadedVectors> ReadRawAsync(Stream body, long? contentLength, int dimension, CollectionBudget.Reservation? reservation, CancellationToken cancellationToken)
    {
        if (dimension <= 0)
        {
            throw Invalid($"query parameter 'dimension' must be a positive number of components per vector, got {dimension}");
        }

        var rowBytes = 4L * dimension;
        long? expectedValues = null;
        if (contentLength is { } length)
        {
            if (length == 0)
            {
                throw Invalid("the body is empty; a collection needs at least one vector");
            }

            if (length % rowBytes != 0)
            {
                throw Invalid($"the body has {length} bytes, which is not a whole number of rows of {dimension} f32 values ({rowBytes} bytes each)");
            }

            if (length / sizeof(float) > Array.MaxLength)
            {
                throw Invalid($"the body of {length} bytes is too large for one collection; split it");
            }

            reservation?.Resize(length);
            expectedValues = length / sizeof(float);
        }

        var read = await ReadValuesAsync(body, isDouble: false, expectedValues, reservation, cancellationToken);
        var received = read.Received;
        if (contentLength is { } declared && received < declared)
        {
            throw Invalid($"the body ended after {received} of the {declared} bytes its Content-Length declares ({declared - received} bytes missing); the upload was truncated");
        }

        if (received == 0)
        {
            throw Invalid("the body is empty; a collection needs at least one vector");
        }

        if (received % rowBytes != 0)
        {
            throw Invalid($"the body has {received} bytes, which is not a whole number of rows of {dimension} f32 values ({rowBytes} bytes each)");
        }

        if (contentLength is not null)
        {
            await RequireEndAsync(body, $"the body continues past the {contentLength} bytes its Content-Length declares", cancellationToken);
        }

        if (read.Count == read.Values.Length)
        {
            return new UploadedVectors(read.Values, dimension);
        }

        // A chunked body grew its buffer by doubling: keep (and hold budget for) only what arrived.
        var exact = read.Values.AsSpan(0, read.Count).ToArray();
        reservation?.Resize((long)exact.Length * sizeof(float));
        return new UploadedVectors(exact, dimension);
    }

    /// <summary>Reads a NumPy <c>.npy</c> file holding a 2-D float32 or float64 array in C order, outside any budget.</summary>
    public static ValueTask<UploadedVectors> ReadNpyAsync(Stream body, long maxBytes, CancellationToken cancellationToken) =>
        ReadNpyAsync(body, maxBytes, reservation: null, cancellationToken);

    /// <summary>
    /// Reads a NumPy <c>.npy</c> file holding a 2-D float32 or float64 array
    /// in C order. Its shape is checked against <paramref name="maxBytes"/>
    /// (413) and reserved as f32 values (507) before its data is read.
    /// </summary>
    public static async ValueTask<UploadedVectors> ReadNpyAsync(Stream body, long maxBytes, CollectionBudget.Reservation? reservation, CancellationToken cancellationToken)
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

        var header = ArrayPool<byte>.Shared.Rent(headerLength);
        (bool IsDouble, long Rows, int Dimension) shape;
        try
        {
            await ReadExactlyAsync(body, header.AsMemory(0, headerLength), "the .npy header", cancellationToken);
            shape = ParseHeader(Encoding.UTF8.GetString(header, 0, headerLength));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(header);
        }

        var (isDouble, rows, dimension) = shape;
        // Checked before reserving or allocating (division first, so a huge
        // shape cannot overflow): the header alone commits no memory.
        if (rows > Array.MaxLength / dimension)
        {
            throw Invalid($"the array of shape ({rows}, {dimension}) is too large for one collection; split it");
        }

        var values = rows * dimension;
        var dataBytes = values * (isDouble ? 8L : 4L);
        if (dataBytes > maxBytes)
        {
            throw Api.RequestBodies.TooLarge(maxBytes);
        }

        reservation?.Resize(values * sizeof(float));
        var data = await ReadValuesAsync(body, isDouble, values, reservation, cancellationToken);
        if (data.Received < dataBytes)
        {
            throw Invalid($"the body ended inside the array data of shape ({rows}, {dimension}): got {data.Received} of {dataBytes} bytes ({dataBytes - data.Received} missing); the upload was truncated");
        }

        await RequireEndAsync(body, $"the body continues past the array data of shape ({rows}, {dimension}); send exactly one .npy file", cancellationToken);
        return new UploadedVectors(data.Values.AsMemory(0, data.Count), dimension);
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

    /// <summary>What <see cref="ReadValuesAsync"/> read: the buffer, the whole values in it, and every byte received.</summary>
    private readonly record struct ReadValues(float[] Values, int Count, long Received);

    /// <summary>
    /// Reads items (f32, or f64 narrowed to f32) until the body ends or
    /// <paramref name="expectedValues"/> are in, through a pooled scratch
    /// chunk into a buffer that doubles as data arrives (never past
    /// <paramref name="expectedValues"/>, so a complete declared body ends in
    /// a buffer of exactly its size).
    /// </summary>
    private static async ValueTask<ReadValues> ReadValuesAsync(Stream body, bool isDouble, long? expectedValues, CollectionBudget.Reservation? reservation, CancellationToken cancellationToken)
    {
        var itemBytes = isDouble ? sizeof(double) : sizeof(float);
        var scratch = ArrayPool<byte>.Shared.Rent(ScratchBytes);
        try
        {
            var values = Array.Empty<float>();
            var count = 0;
            var carry = 0;
            while (expectedValues is not { } expected || count < expected)
            {
                var room = scratch.Length - carry;
                if (expectedValues is { } limit)
                {
                    room = (int)Math.Min(room, ((limit - count) * itemBytes) - carry);
                }

                var read = await body.ReadAsync(scratch.AsMemory(carry, room), cancellationToken);
                if (read == 0)
                {
                    break;
                }

                var filled = carry + read;
                var items = filled / itemBytes;
                values = EnsureCapacity(values, count, (long)count + items, expectedValues, reservation);
                Convert(scratch.AsSpan(0, items * itemBytes), values.AsSpan(count, items), isDouble);
                count += items;
                carry = filled - (items * itemBytes);
                scratch.AsSpan(items * itemBytes, carry).CopyTo(scratch);
            }

            return new ReadValues(values, count, ((long)count * itemBytes) + carry);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private static float[] EnsureCapacity(float[] values, int count, long needed, long? expectedValues, CollectionBudget.Reservation? reservation)
    {
        if (needed <= values.Length)
        {
            return values;
        }

        var capacity = Math.Max(needed, Math.Max(2L * values.Length, MinCapacity));
        capacity = Math.Min(capacity, expectedValues ?? Array.MaxLength);
        if (needed > capacity)
        {
            throw Invalid($"the body holds more than {Array.MaxLength} values, too many for one collection; split it");
        }

        // A declared size was reserved up front; a chunked body reserves as its buffer grows.
        if (reservation is not null && capacity * sizeof(float) > reservation.Bytes)
        {
            reservation.Resize(capacity * sizeof(float));
        }

        var grown = GC.AllocateUninitializedArray<float>((int)capacity);
        values.AsSpan(0, count).CopyTo(grown);
        return grown;
    }

    private static void Convert(ReadOnlySpan<byte> bytes, Span<float> destination, bool isDouble)
    {
        if (isDouble)
        {
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes.Slice(i * sizeof(double), sizeof(double)));
            }

            return;
        }

        MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
        if (!BitConverter.IsLittleEndian)
        {
            var raw = MemoryMarshal.Cast<float, int>(destination);
            BinaryPrimitives.ReverseEndianness(raw, raw);
        }
    }

    private static async ValueTask RequireEndAsync(Stream body, string message, CancellationToken cancellationToken)
    {
        var probe = ArrayPool<byte>.Shared.Rent(1);
        try
        {
            if (await body.ReadAsync(probe.AsMemory(0, 1), cancellationToken) != 0)
            {
                throw Invalid(message);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(probe);
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

    private static TandemException Invalid(string message) => new(TandemStatusCode.InvalidArgument, message, Kernel);

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
