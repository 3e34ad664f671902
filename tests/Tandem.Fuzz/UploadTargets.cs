using Tandem.Server.Api;
using Tandem.Server.Collections;

namespace Tandem.Fuzz;

/// <summary>Shared outcome checks of the two upload parsers.</summary>
internal static class Uploads
{
    /// <summary>Largest upload a fuzzed .npy body may declare (the server's limit is an option).</summary>
    public const long MaxBytes = 1 << 20;

    public static void Check(Func<ValueTask<UploadedVectors>> parse)
    {
        UploadedVectors vectors;
        try
        {
            vectors = parse().AsTask().GetAwaiter().GetResult();
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.InvalidArgument && e.Message.Length > 0)
        {
            return;
        }
        catch (HttpProblemException e) when (e.Status == 413 && e.Code == TandemStatusCode.ResourceExhausted)
        {
            return;
        }

        if (vectors.Dimension <= 0 || vectors.Values.Length == 0 || vectors.Values.Length % vectors.Dimension != 0)
        {
            throw new InvalidOperationException($"accepted {vectors.Values.Length} values of dimension {vectors.Dimension}");
        }
    }
}

/// <summary>
/// <c>VectorUploads.ReadNpyAsync</c>: byte 0 picks how many bytes each
/// read returns; the rest is the body.
/// </summary>
internal sealed class NpyTarget : IFuzzTarget
{
    public string Name => "npy";

    public void Run(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var body = input[1..];
        var chunk = input[0] % 17 + 1;
        Uploads.Check(() => VectorUploads.ReadNpyAsync(new TricklingStream(body, chunk), Uploads.MaxBytes, CancellationToken.None));
    }
}

/// <summary>
/// <c>VectorUploads.ReadRawAsync</c>: byte 0 the dimension (−2…61), byte 1
/// the declared Content-Length (none, exact, one more or one less than
/// the body) and the read size; the rest is the body.
/// </summary>
internal sealed class RawTarget : IFuzzTarget
{
    public string Name => "raw";

    public void Run(byte[] input)
    {
        if (input.Length < 2)
        {
            return;
        }

        var body = input[2..];
        var dimension = input[0] % 64 - 2;
        long? contentLength = (input[1] & 3) switch
        {
            0 => null,
            1 => body.Length,
            2 => body.Length + 1L,
            _ => Math.Max(0, body.Length - 1L),
        };
        var chunk = (input[1] >> 2) + 1;
        Uploads.Check(() => VectorUploads.ReadRawAsync(new TricklingStream(body, chunk), contentLength, dimension, CancellationToken.None));
    }
}
