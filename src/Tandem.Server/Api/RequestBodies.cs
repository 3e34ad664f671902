using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Features;

namespace Tandem.Server.Api;

/// <summary>A failure answered with a specific HTTP status (413, 415, 507) besides the Tandem code's own.</summary>
internal sealed class HttpProblemException(int status, TandemStatusCode code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public TandemStatusCode Code { get; } = code;

    /// <summary>When a limit refused the request: the <c>reason</c> counted in <c>tandem.server.refusals</c>.</summary>
    public string? Reason { get; init; }
}

/// <summary>Reading request bodies within their limits, with errors that say what to send instead.</summary>
internal static class RequestBodies
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        NumberHandling = JsonNumberHandling.Strict,
        AllowTrailingCommas = false,
        ReadCommentHandling = JsonCommentHandling.Disallow,
    };

    /// <summary>
    /// Applies <paramref name="maxBytes"/> (null: none) to this request's body:
    /// a declared length above it fails at once with 413, and a body that
    /// grows past it fails as it is read, whether or not Kestrel enforces it.
    /// </summary>
    public static BodyStream Limit(HttpContext context, long? maxBytes)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = maxBytes;
        }

        if (context.Request.ContentLength > maxBytes)
        {
            throw TooLarge(maxBytes.Value);
        }

        return new BodyStream(context.Request.Body, maxBytes);
    }

    /// <summary>Checks the request's media type is <paramref name="expected"/> (415 otherwise).</summary>
    public static void RequireContentType(HttpContext context, string expected, string example)
    {
        var contentType = context.Request.ContentType;
        if (contentType is null || !contentType.Split(';')[0].Trim().Equals(expected, StringComparison.OrdinalIgnoreCase))
        {
            throw new HttpProblemException(
                StatusCodes.Status415UnsupportedMediaType,
                TandemStatusCode.InvalidArgument,
                $"this endpoint takes Content-Type: {expected}{example}; the request says '{contentType ?? "(none)"}'");
        }
    }

    /// <summary>Reads a JSON body of type <typeparamref name="T"/>; malformed, empty, null or oversize bodies fail with a problem.</summary>
    public static async ValueTask<T> ReadJsonAsync<T>(HttpContext context, long maxBytes, string example)
        where T : class
    {
        RequireContentType(context, "application/json", $", for example {example}");
        if (context.Request.ContentLength == 0)
        {
            throw Empty(example);
        }

        var body = Limit(context, maxBytes);
        T? value;
        try
        {
            value = await JsonSerializer.DeserializeAsync<T>(body, Json, context.RequestAborted);
        }
        catch (JsonException e) when (e.BytePositionInLine == 0 && e.LineNumber == 0 && e.Message.Contains("does not contain any JSON tokens", StringComparison.Ordinal))
        {
            throw Empty(example);
        }

        return value ?? throw new TandemException(TandemStatusCode.InvalidArgument, $"the body is JSON null; send an object, for example {example}");
    }

    public static HttpProblemException TooLarge(long max) =>
        new(StatusCodes.Status413PayloadTooLarge, TandemStatusCode.ResourceExhausted, $"the request body is larger than this endpoint's limit of {max} bytes; see Server:Limits in docs/operations.md")
        {
            Reason = Hosting.RefusalReasons.BodyTooLarge,
        };

    private static TandemException Empty(string example) =>
        new(TandemStatusCode.InvalidArgument, $"the request body is empty; send a JSON object, for example {example}");

    /// <summary>A read-only view of a body that counts what was read and fails with 413 once more than its limit (if any) has been.</summary>
    internal sealed class BodyStream(Stream inner, long? max) : Stream
    {
        private long _read;

        public long BytesRead => _read;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int read)
        {
            _read += read;
            return _read > max ? throw TooLarge(max.Value) : read;
        }
    }
}
