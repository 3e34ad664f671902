using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Tandem.Server.Tests.Support;

/// <summary>
/// A request whose body throws if anything reads it, for calling an endpoint
/// handler directly: proves a request was refused on its URL and headers alone.
/// </summary>
internal static class UnreadableBody
{
    public static DefaultHttpContext Request(IServiceProvider services, string contentType, long? contentLength)
    {
        var context = new DefaultHttpContext { RequestServices = services.CreateScope().ServiceProvider };
        context.Request.Method = "PUT";
        context.Request.ContentType = contentType;
        context.Request.ContentLength = contentLength;
        context.Request.Body = new ThrowingStream();
        return context;
    }

    private sealed class ThrowingStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => throw Read();

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => throw Read();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => throw Read();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private static InvalidOperationException Read() => new("the handler read a body it should have refused unread");
    }
}
