namespace Tandem.Internal.Hashing;

/// <summary>An open BLAKE3 stream on one backend.</summary>
internal interface IHashState : IDisposable
{
    void Append(ReadOnlySpan<byte> data);

    /// <summary>Writes <c>output.Length</c> bytes of digest; the stream takes no more data.</summary>
    void Finalize(Span<byte> output);
}

/// <summary>One backend's <c>hash.blake3</c>; output lengths are already validated.</summary>
internal interface IHashingBackend
{
    BackendKind Kind { get; }

    void Hash(ReadOnlySpan<byte> data, Span<byte> output);

    IHashState Open();
}
