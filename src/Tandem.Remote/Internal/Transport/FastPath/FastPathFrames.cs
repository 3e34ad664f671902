using System.Buffers.Binary;

namespace Tandem.Remote.Internal.Transport.FastPath;

/// <summary>
/// The fast path's frames, protocol version 1 — the worker's
/// native/worker/src/fast/frame.rs is the reference. Little-endian:
/// <c>len: u32 | kind: u8 | method: u8 | flags: u16 | id: u32 | body</c>,
/// <c>len</c> counting the bytes after itself. A CALL body is
/// <c>timeout_us: u64 | trace_id: [16] | request message</c>; a STATUS body
/// <c>code: u32 | message (UTF-8)</c>; a WELCOME body
/// <c>version: u16 | reserved: u16 | max_in_flight: u32 | max_message_bytes: u32</c>.
/// </summary>
internal static class FastPathFrames
{
    public const ushort Version = 1;

    /// <summary>Bytes before a frame's body, the length field included.</summary>
    public const int HeaderLength = 12;

    /// <summary>Bytes of a CALL body before the request message.</summary>
    public const int CallPrefixLength = 24;

    public const byte Hello = 1;
    public const byte Call = 2;
    public const byte Cancel = 3;
    public const byte Welcome = 0x81;
    public const byte Reply = 0x82;
    public const byte Status = 0x83;

    /// <summary>CALL flag: the timeout is the call's deadline.</summary>
    public const ushort FlagDeadline = 1;

    /// <summary>The method numbers the client uses (the worker's METHODS table).</summary>
    public const byte MethodInvoke = 2;
    public const byte MethodCheck = 11;

    public static void WriteHeader(Span<byte> destination, int bodyLength, byte kind, byte method, ushort flags, uint id)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)(HeaderLength - 4 + bodyLength));
        destination[4] = kind;
        destination[5] = method;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], id);
    }

    /// <summary>A header's fields; false when fewer than <see cref="HeaderLength"/> bytes are there.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> source, out long bodyLength, out byte kind, out byte method, out uint id)
    {
        if (source.Length < HeaderLength)
        {
            (bodyLength, kind, method, id) = (0, 0, 0, 0);
            return false;
        }

        bodyLength = (long)BinaryPrimitives.ReadUInt32LittleEndian(source) - (HeaderLength - 4);
        kind = source[4];
        method = source[5];
        id = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        return true;
    }

    /// <summary>A HELLO with the protocol version and the token (empty: none).</summary>
    public static byte[] HelloFrame(string? token)
    {
        var secret = token is null ? [] : System.Text.Encoding.ASCII.GetBytes(token);
        var frame = new byte[HeaderLength + 4 + secret.Length];
        WriteHeader(frame, 4 + secret.Length, Hello, 0, 0, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(HeaderLength), Version);
        BinaryPrimitives.WriteUInt16LittleEndian(frame.AsSpan(HeaderLength + 2), checked((ushort)secret.Length));
        secret.CopyTo(frame.AsSpan(HeaderLength + 4));
        return frame;
    }

    /// <summary>The code and message of a STATUS body.</summary>
    public static (int Code, string Message) ReadStatus(ReadOnlySpan<byte> body) =>
        body.Length < 4
            ? (13, "the worker sent a malformed STATUS frame")
            : ((int)BinaryPrimitives.ReadUInt32LittleEndian(body), System.Text.Encoding.UTF8.GetString(body[4..]));
}
