using System.Buffers.Binary;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Health.V1;
using Tandem.Remote.Internal.Transport.FastPath;

namespace Tandem.Tests.Remote;

/// <summary>
/// The client's fast-path connection against a scripted peer on a real Unix
/// socket: what a worker that misbehaves in ways a real one does not (or
/// only when stopped) does to it.
/// </summary>
public sealed class FastPathConnectionTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("tandem-test-fastconn-");
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);

    public FastPathConnectionTests()
    {
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(1);
    }

    private string SocketPath => Path.Combine(_dir.FullName, "w.sock.fast");

    [Fact]
    public async Task ConnectAsync_WorkerAnswersStatus_RpcExceptionWithItsCodeAndMessage()
    {
        var peer = AcceptAsync(async socket =>
        {
            await ReadExactlyAsync(socket, FastPathFrames.HeaderLength + 4);
            await socket.SendAsync(Frame(FastPathFrames.Status, 0, Status(16, "the token the HELLO carried is not this worker's")), SocketFlags.None);
        });

        var error = await Assert.ThrowsAsync<RpcException>(() => FastPathConnection.ConnectAsync(SocketPath, null, Patience, CancellationToken.None));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("not this worker's", error.Status.Detail);
        await peer.WaitAsync(Patience);
    }

    [Fact]
    public async Task CallAsync_WorkerStopsReadingWhileCallersGiveUp_ConnectionClosesInsteadOfQueueingWithoutBound()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var peer = AcceptAsync(async socket =>
        {
            await ReadExactlyAsync(socket, FastPathFrames.HeaderLength + 4);
            await socket.SendAsync(Welcome(maxInFlight: 1, maxMessageBytes: 1 << 20), SocketFlags.None);
            // From here on it reads nothing, like a worker under SIGSTOP.
            await release.Task;
        });
        using var connection = await FastPathConnection.ConnectAsync(SocketPath, null, Patience, CancellationToken.None);
        // Large enough that the first call fills the socket's buffers.
        var request = new HealthCheckRequest { Service = new string('x', 512 * 1024) };

        RpcException? last = null;
        for (var call = 0; call < 1000 && connection.CloseReason is null; call++)
        {
            last = await Assert.ThrowsAsync<RpcException>(() => connection.CallAsync(FastPathFrames.MethodCheck, request, HealthCheckResponse.Parser, DateTime.UtcNow.AddMilliseconds(20), CancellationToken.None).WaitAsync(Patience));
            Assert.True(last.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Unavailable, last.ToString());
        }

        Assert.NotNull(connection.CloseReason);
        Assert.Contains("stopped reading", connection.CloseReason);
        var after = await Assert.ThrowsAsync<RpcException>(() => connection.CallAsync(FastPathFrames.MethodCheck, new HealthCheckRequest(), HealthCheckResponse.Parser, null, CancellationToken.None));
        Assert.Equal(StatusCode.Unavailable, after.StatusCode);
        release.SetResult();
        await peer.WaitAsync(Patience);
    }

    [Fact]
    public async Task CallAsync_WorkerSendsAnUnknownFrameKind_CallsFailUnavailableAndTheConnectionCloses()
    {
        var peer = AcceptAsync(async socket =>
        {
            await ReadExactlyAsync(socket, FastPathFrames.HeaderLength + 4);
            await socket.SendAsync(Welcome(maxInFlight: 4, maxMessageBytes: 1 << 20), SocketFlags.None);
            var call = await ReadExactlyAsync(socket, FastPathFrames.HeaderLength);
            var id = BinaryPrimitives.ReadUInt32LittleEndian(call.AsSpan(8));
            var bodyLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(call) - 8;
            await ReadExactlyAsync(socket, bodyLength);
            await socket.SendAsync(Frame(0x99, id, []), SocketFlags.None);
        });
        using var connection = await FastPathConnection.ConnectAsync(SocketPath, null, Patience, CancellationToken.None);

        var error = await Assert.ThrowsAsync<RpcException>(() => connection.CallAsync(FastPathFrames.MethodCheck, new HealthCheckRequest(), HealthCheckResponse.Parser, null, CancellationToken.None).WaitAsync(Patience));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("unknown frame kind", connection.CloseReason);
        await peer.WaitAsync(Patience);
    }

    private async Task AcceptAsync(Func<Socket, Task> script)
    {
        using var socket = await _listener.AcceptAsync();
        await script(socket);
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var read = 0;
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None);
            Assert.True(n > 0, "the client closed the connection");
            read += n;
        }

        return buffer;
    }

    private static byte[] Frame(byte kind, uint id, byte[] body)
    {
        var frame = new byte[FastPathFrames.HeaderLength + body.Length];
        FastPathFrames.WriteHeader(frame, body.Length, kind, 0, 0, id);
        body.CopyTo(frame.AsSpan(FastPathFrames.HeaderLength));
        return frame;
    }

    private static byte[] Status(int code, string message)
    {
        var text = System.Text.Encoding.UTF8.GetBytes(message);
        var body = new byte[4 + text.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(body, (uint)code);
        text.CopyTo(body.AsSpan(4));
        return body;
    }

    private static byte[] Welcome(uint maxInFlight, uint maxMessageBytes)
    {
        var body = new byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(body, FastPathFrames.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), maxInFlight);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), maxMessageBytes);
        return Frame(FastPathFrames.Welcome, 0, body);
    }

    public void Dispose()
    {
        _listener.Dispose();
        _dir.Delete(recursive: true);
    }
}
