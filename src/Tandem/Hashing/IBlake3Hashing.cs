namespace Tandem.Hashing;

/// <summary>
/// <c>hash.blake3</c>: BLAKE3 digests of spans, streams and incremental
/// input; output length 1 byte to 1 MiB (32 by default, extended output
/// beyond). Failures surface as <see cref="TandemException"/>.
/// </summary>
/// <remarks>
/// The synchronous members never wait on I/O: they run in process (Native,
/// else Managed) even when <c>hash.blake3</c> is configured for Remote. The
/// asynchronous ones run on the configured backend, the remote workers included.
/// </remarks>
public interface IBlake3Hashing
{
    /// <summary>Largest output length.</summary>
    public const int MaxOutputLength = 1 << 20;

    /// <summary>The digest of <paramref name="data"/>, computed in process on this thread.</summary>
    byte[] Hash(ReadOnlySpan<byte> data, int outputLength = 32);

    /// <summary>
    /// Writes the digest of <paramref name="data"/>, as long as
    /// <paramref name="destination"/> (1 byte to <see cref="MaxOutputLength"/>),
    /// into <paramref name="destination"/>, in process on this thread: the
    /// call allocates nothing. <paramref name="destination"/> must not overlap
    /// <paramref name="data"/>.
    /// </summary>
    void Hash(ReadOnlySpan<byte> data, Span<byte> destination) => Hash(data, destination.Length).CopyTo(destination);

    /// <summary>The digest of <paramref name="data"/> on the configured backend; keep the memory unchanged until the task completes.</summary>
    ValueTask<byte[]> HashAsync(ReadOnlyMemory<byte> data, int outputLength = 32, CancellationToken cancellationToken = default);

    /// <summary>
    /// The digest of everything <paramref name="stream"/> yields, read in
    /// pooled 1 MiB chunks with one chunk of read-ahead: memory stays bounded
    /// whatever the stream's size, and reading overlaps hashing.
    /// </summary>
    ValueTask<byte[]> HashAsync(Stream stream, int outputLength = 32, CancellationToken cancellationToken = default);

    /// <summary>
    /// An incremental hash in process (as <see cref="Hash"/>), whose
    /// <see cref="Blake3Stream.Append"/> and <see cref="Blake3Stream.Finalize"/>
    /// complete on the caller's thread; dispose it to release it, finalized or not.
    /// </summary>
    Blake3Stream OpenStream();

    /// <summary>
    /// An incremental hash on the configured backend (on Remote, once the
    /// workers have started); feed it with <see cref="Blake3Stream.AppendAsync"/>
    /// and <see cref="Blake3Stream.FinalizeAsync"/>, and dispose it to release it.
    /// </summary>
    ValueTask<Blake3Stream> OpenStreamAsync(CancellationToken cancellationToken = default);
}
