using System.Buffers.Binary;
using System.Text;

namespace Tandem.Server.Tests.Support;

/// <summary>Writes NumPy .npy files by hand (magic, version, padded header dict, data), including deliberately broken ones.</summary>
internal static class Npy
{
    public static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>A version 1.0 file of little-endian float32 rows.</summary>
    public static byte[] F4(float[][] rows) => File("<f4", fortranOrder: false, Shape(rows), Data(rows, isDouble: false));

    /// <summary>A version 1.0 file of little-endian float64 rows.</summary>
    public static byte[] F8(float[][] rows) => File("<f8", fortranOrder: false, Shape(rows), Data(rows, isDouble: true));

    /// <summary>A version 1.0 file with the given header fields and data bytes as they are.</summary>
    public static byte[] File(string descr, bool fortranOrder, string shape, byte[] data, byte[]? magic = null)
    {
        var dict = $"{{'descr': '{descr}', 'fortran_order': {(fortranOrder ? "True" : "False")}, 'shape': {shape}, }}";
        // The preamble (magic, version, length) plus header ends on a 64-byte boundary, the header on '\n'.
        var unpadded = 10 + dict.Length + 1;
        var header = dict + new string(' ', (64 - (unpadded % 64)) % 64) + "\n";
        var bytes = new byte[10 + header.Length + data.Length];
        (magic ?? Magic).CopyTo(bytes, 0);
        bytes[6] = 1;
        bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8, 2), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(bytes, 10);
        data.CopyTo(bytes, 10 + header.Length);
        return bytes;
    }

    public static string Shape(float[][] rows) => $"({rows.Length}, {rows[0].Length})";

    public static byte[] Data(float[][] rows, bool isDouble)
    {
        var size = isDouble ? 8 : 4;
        var data = new byte[rows.Length * rows[0].Length * size];
        var offset = 0;
        foreach (var row in rows)
        {
            foreach (var value in row)
            {
                if (isDouble)
                {
                    BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(offset, 8), value);
                }
                else
                {
                    BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(offset, 4), value);
                }

                offset += size;
            }
        }

        return data;
    }
}
