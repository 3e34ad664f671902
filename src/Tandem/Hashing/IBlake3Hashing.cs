namespace Tandem.Hashing;

/// <summary>
/// <c>hash.blake3</c>: BLAKE3 digests of spans, streams and incremental
/// input; output length 1 byte to 1 MiB (32 by default, extended output
/// beyond). Failures surface as <see cref="TandemException"/>.
/// </summary>
public interface IBlake3Hashing
{
    /// <summary>Largest output length.</summary>
    public const int MaxOutputLength = 1 << 20;

    /// <summary>The digest of <paramref name="data"/>.</summary>
    byte[] Hash(ReadOnlySpan<byte> data, int outputLength = 32);

    /// <summary>
    /// The digest of everything <paramref name="stream"/> yields, read in
    /// pooled 1 MiB chunks with one chunk of read-ahead: memory stays bounded
    /// whatever the stream's size, and reading overlaps hashing.
    /// </summary>
    ValueTask<byte[]> HashAsync(Stream stream, int outputLength = 32, CancellationToken cancellationToken = default);

    /// <summary>An incremental hash; dispose it to release it, finalized or not.</summary>
    Blake3Stream OpenStream();
}
