using Tandem.Internal.Hashing;

namespace Tandem.Internal.Managed;

/// <summary><c>hash.blake3</c> in C#.</summary>
internal sealed class ManagedHashingBackend : IHashingBackend
{
    public BackendKind Kind => BackendKind.Managed;

    public void Hash(ReadOnlySpan<byte> data, Span<byte> output) => ManagedBlake3.Hash(data, output);

    public IHashState Open() => new ManagedBlake3();
}
