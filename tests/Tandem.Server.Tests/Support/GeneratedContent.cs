using System.Diagnostics;
using System.Net;

namespace Tandem.Server.Tests.Support;

/// <summary>
/// A request body of <see cref="Length"/> bytes made up as it is sent, in
/// 64 KiB chunks and without a Content-Length (chunked transfer), so a test
/// can send many MiB while holding one chunk.
/// </summary>
internal sealed class GeneratedContent(long length) : HttpContent
{
    private const int ChunkBytes = 64 << 10;

    public long Length { get; } = length;

    /// <summary>Writes the same bytes the content sends to <paramref name="destination"/>.</summary>
    public async Task WriteToAsync(Stream destination)
    {
        var chunk = new byte[ChunkBytes];
        for (long offset = 0; offset < Length; offset += ChunkBytes)
        {
            var count = (int)Math.Min(ChunkBytes, Length - offset);
            Fill(chunk.AsSpan(0, count), offset);
            await destination.WriteAsync(chunk.AsMemory(0, count));
        }
    }

    /// <summary>The hex BLAKE3 digest b3sum computes over the same bytes, streamed to its stdin.</summary>
    public async Task<string> B3sumAsync(int outputLength = 32)
    {
        var start = new ProcessStartInfo("b3sum", ["--no-names", "--length", outputLength.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("b3sum did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        await WriteToAsync(process.StandardInput.BaseStream);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, process.ExitCode);
        return (await output).Trim();
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => WriteToAsync(stream);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    // A pattern with no short period, so a misplaced or dropped chunk changes the digest.
    private static void Fill(Span<byte> chunk, long offset)
    {
        for (var i = 0; i < chunk.Length; i++)
        {
            var position = offset + i;
            chunk[i] = (byte)((position * 31) ^ (position >> 11) ^ (position >> 19));
        }
    }
}
