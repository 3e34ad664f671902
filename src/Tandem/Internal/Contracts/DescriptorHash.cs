using System.Buffers.Binary;
using Google.Protobuf;
using Tandem.Contracts.V1;
using Tandem.Internal.Managed;

namespace Tandem.Internal.Contracts;

/// <summary>
/// The descriptor hash, computed the way the Rust SDK computes it
/// (tandem_sdk::descriptor::hash): BLAKE3 over a domain tag, the canonical
/// protobuf encoding of the descriptor with <c>hash</c> and <c>library</c>
/// cleared, and its state kind's descriptor; the first 16 bytes in hex.
/// Tests check that both sides agree on every reference kernel.
/// </summary>
internal static class DescriptorHash
{
    private static ReadOnlySpan<byte> Domain => "tandem.descriptor.v1"u8;

    public static string Of(KernelDescriptor descriptor, StateKindDescriptor? stateKind)
    {
        var contract = descriptor.Clone();
        contract.Hash = string.Empty;
        contract.Library = string.Empty;
        var body = contract.ToByteArray();
        var kind = stateKind?.ToByteArray();
        var input = new byte[Domain.Length + 8 + body.Length + (kind is null ? 0 : 8 + kind.Length)];
        var at = 0;
        Domain.CopyTo(input);
        at += Domain.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(input.AsSpan(at), (ulong)body.Length);
        body.CopyTo(input.AsSpan(at + 8));
        at += 8 + body.Length;
        if (kind is not null)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(input.AsSpan(at), (ulong)kind.Length);
            kind.CopyTo(input.AsSpan(at + 8));
        }

        Span<byte> digest = stackalloc byte[16];
        ManagedBlake3.Hash(input, digest);
        return Convert.ToHexStringLower(digest);
    }
}
