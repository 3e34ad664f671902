using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Options;
using Tandem.Server.Api;
using Tandem.Server.Collections;
using Tandem.Server.Tests.Support;

namespace Tandem.Server.Tests.Collections;

/// <summary>
/// The raw and .npy parsers on generated bodies (valid, mutated, truncated,
/// odd shapes, NaN/infinity, read in random pieces): every outcome is the
/// exact vectors or a 400/413-class refusal, never another exception, and
/// the budget reservation always covers the buffer it returns.
/// </summary>
public sealed class VectorUploadsPropertyTests
{
    private const int Cases = 2_000;
    private const long MaxBytes = 1 << 20;
    private static readonly float[] Specials = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.Epsilon, -0f, float.MaxValue, 1e-40f];
    private static readonly string[] OddShapes = ["(-1, 3)", "(3,)", "(2, 3, 4)", "()", "(99999999999, 99999)", "(1, 2147483647)", "(2147483647, 2)", "(0, 4)", "(4, 0)", "(1e3, 2)", "( 2 , 2 )", "(2, 2", "(٣, 2)", "(+2, 2)"];
    private static readonly string[] OddDescrs = ["<f4", "<f8", ">f4", "<i4", "|u1", "<f2", "", "<f4'"];

    [Fact]
    public async Task ReadNpy_GeneratedBodies_ReturnExactVectorsOrRefuse()
    {
        var random = new Random(12);
        for (var i = 0; i < Cases; i++)
        {
            var (body, expected) = NpyCase(random);
            await CheckAsync($"npy case {i}", body, expected, random, (stream, reservation) => VectorUploads.ReadNpyAsync(stream, MaxBytes, reservation, CancellationToken.None));
        }
    }

    [Fact]
    public async Task ReadRaw_GeneratedBodies_ReturnExactVectorsOrRefuse()
    {
        var random = new Random(34);
        for (var i = 0; i < Cases; i++)
        {
            var dimension = random.Next(-2, 9);
            var rows = Rows(random, random.Next(0, 12), Math.Max(dimension, 1));
            var body = rows.Length == 0 ? [] : Vectors.RawF32(rows);
            float[][]? expected = dimension > 0 && rows.Length > 0 ? rows : null;
            if (random.Next(4) == 0 && body.Length > 0)
            {
                body = body[..random.Next(body.Length)];
                expected = null;
            }

            long? contentLength = random.Next(5) switch
            {
                0 => null,
                1 => body.Length + random.Next(-8, 9),
                _ => body.Length,
            };
            if (contentLength < 0)
            {
                contentLength = 0;
            }

            if (contentLength is { } declared && declared != body.Length)
            {
                expected = null;
            }

            await CheckAsync($"raw case {i} (dimension {dimension}, {body.Length} bytes, Content-Length {contentLength?.ToString() ?? "none"})", body, expected, random, (stream, reservation) => VectorUploads.ReadRawAsync(stream, contentLength, dimension, reservation, CancellationToken.None));
        }
    }

    [Fact]
    public async Task ReadNpy_Float64ReadOneByteAtATime_NarrowsEveryValueExactly()
    {
        var rows = Rows(new Random(5), 33, 7);
        var body = Npy.F8(rows);

        var upload = await VectorUploads.ReadNpyAsync(new PiecewiseStream(body, new Random(6), maxPiece: 1), MaxBytes, CancellationToken.None);

        Assert.Equal(7, upload.Dimension);
        Assert.Equal(rows.SelectMany(r => r).ToArray(), upload.Values.ToArray());
    }

    private static async Task CheckAsync(string label, byte[] body, float[][]? expected, Random random, Func<Stream, CollectionBudget.Reservation, ValueTask<UploadedVectors>> read)
    {
        var budget = new CollectionBudget(Options.Create(new ServerOptions()));
        using var reservation = budget.Reserve(0);
        UploadedVectors upload;
        try
        {
            upload = await read(new PiecewiseStream(body, random, maxPiece: random.Next(1, 70_000)), reservation);
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.InvalidArgument)
        {
            Assert.True(expected is null, $"{label}: a valid body was refused: {e.Message}");
            Assert.False(string.IsNullOrWhiteSpace(e.Message));
            return;
        }
        catch (HttpProblemException e) when (e.Status is 413)
        {
            Assert.True(expected is null, $"{label}: a valid body was refused: {e.Message}");
            return;
        }
        catch (Exception e)
        {
            Assert.Fail($"{label}: {e.GetType().Name} escaped the parser: {e.Message}");
            return;
        }

        Assert.True(upload.Dimension > 0, $"{label}: dimension {upload.Dimension}");
        Assert.True(upload.Values.Length > 0 && upload.Values.Length % upload.Dimension == 0, $"{label}: {upload.Values.Length} values for dimension {upload.Dimension}");
        Assert.True(reservation.Bytes >= (long)upload.Values.Length * sizeof(float), $"{label}: {upload.Values.Length} values but only {reservation.Bytes} bytes reserved");
        if (expected is not null)
        {
            Assert.Equal(expected[0].Length, upload.Dimension);
            Assert.Equal(expected.SelectMany(r => r).ToArray(), upload.Values.ToArray());
        }
    }

    /// <summary>A .npy body and the vectors it should give (null when the case is meant to be refused, or may be).</summary>
    private static (byte[] Body, float[][]? Expected) NpyCase(Random random)
    {
        var rows = Rows(random, random.Next(1, 10), random.Next(1, 9));
        var isDouble = random.Next(2) == 0;
        var valid = isDouble ? Npy.F8(rows) : Npy.F4(rows);
        switch (random.Next(8))
        {
            case 0:
            case 1:
                return (valid, rows);
            case 2:
                return (valid[..random.Next(valid.Length)], null);
            case 3:
                var flipped = (byte[])valid.Clone();
                flipped[random.Next(flipped.Length)] ^= (byte)random.Next(1, 256);
                return (flipped, null);
            case 4:
                return ([.. valid, .. RandomBytes(random, random.Next(1, 16))], null);
            case 5:
                var shape = OddShapes[random.Next(OddShapes.Length)];
                return (Npy.File(isDouble ? "<f8" : "<f4", false, shape, Npy.Data(rows, isDouble)), null);
            case 6:
                return (Npy.File(OddDescrs[random.Next(OddDescrs.Length)], random.Next(2) == 0, Npy.Shape(rows), Npy.Data(rows, isDouble)), null);
            default:
                // Another version, or a header length that lies.
                var lied = (byte[])valid.Clone();
                if (random.Next(2) == 0)
                {
                    lied[6] = (byte)random.Next(0, 5);
                }
                else
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(lied.AsSpan(8, 2), (ushort)random.Next(0, 65536));
                }

                return (lied, null);
        }
    }

    /// <summary>Rows of ordinary values with, now and then, NaN, infinities, denormals and extremes (the parser carries them; the kernel refuses non-finite ones).</summary>
    private static float[][] Rows(Random random, int count, int dimension)
    {
        var rows = new float[count][];
        for (var r = 0; r < count; r++)
        {
            rows[r] = new float[dimension];
            for (var c = 0; c < dimension; c++)
            {
                rows[r][c] = random.Next(20) == 0 ? Specials[random.Next(Specials.Length)] : (float)((random.NextDouble() * 2) - 1);
            }
        }

        return rows;
    }

    private static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>A read-only stream over bytes that hands them out in random pieces, as a network would.</summary>
    private sealed class PiecewiseStream(byte[] bytes, Random random, int maxPiece) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var piece = Math.Min(Math.Min(buffer.Length, bytes.Length - _position), random.Next(1, maxPiece + 1));
            bytes.AsSpan(_position, piece).CopyTo(buffer);
            _position += piece;
            return piece;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
