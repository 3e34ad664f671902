using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;

namespace Tandem.Remote.Internal.Transport.FastPath;

/// <summary>
/// One connection to a worker's fast-path socket: unary calls multiplexed
/// by request id, each completed by the single reader loop (continuations
/// run asynchronously, never on the reader), with its deadline kept here too
/// (a stopped worker answers nothing) and a CANCEL frame sent when the
/// caller gives up. A caller writes its own frame when no write is under way;
/// frames that queue up behind a write go out together in one. Failures are
/// <see cref="RpcException"/>s with the worker's code and message, exactly
/// as over gRPC, so the pool's retries, ejection and error mapping apply
/// unchanged; a connection that breaks fails every call on it with
/// UNAVAILABLE and takes no more.
/// </summary>
internal sealed class FastPathConnection : IDisposable
{
    private const int ReadChunk = 64 * 1024;
    private const int CoalesceBytes = 64 * 1024;

    private readonly Socket _socket;
    private readonly ConcurrentDictionary<uint, IPendingCall> _pending = new();
    private readonly SemaphoreSlim _places;
    private readonly int _maxMessageBytes;
    private readonly int _maxReplyBytes;
    private readonly ConcurrentQueue<Outgoing> _outbox = new();
    private readonly byte[] _batch = new byte[CoalesceBytes];
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _writing;
    private int _queued;
    private uint _nextId;
    // The reader's buffer and the unread bytes in it; one read loop invocation uses them at a time.
    private byte[] _readBuffer = ArrayPool<byte>.Shared.Rent(ReadChunk);
    private int _readStart;
    private int _readEnd;
    private readonly List<IPendingCall> _ready = new(1);
    private string? _closeReason;
    private string? _workerReason;

    private FastPathConnection(Socket socket, int maxInFlight, int maxMessageBytes)
    {
        _socket = socket;
        _places = new SemaphoreSlim(maxInFlight, maxInFlight);
        _maxMessageBytes = maxMessageBytes;
        // Inline outputs are bounded by the worker's message limit; a little room for the rest of the reply.
        _maxReplyBytes = maxMessageBytes > int.MaxValue - (1 << 20) ? int.MaxValue : maxMessageBytes + (1 << 20);
    }

    /// <summary>Why the connection closed; null while it is open.</summary>
    public string? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>Completes when the connection has closed.</summary>
    public Task Closed => _closed.Task;

    /// <summary>The worker's limit on calls in flight on this connection (from WELCOME).</summary>
    public int MaxInFlight { get; private init; }

    /// <summary>Connects, says HELLO and reads the WELCOME, within <paramref name="timeout"/>.</summary>
    /// <exception cref="RpcException">The worker refused the connection (its code and message).</exception>
    /// <exception cref="IOException">The socket could not be reached or the handshake broke.</exception>
    public static async Task<FastPathConnection> ConnectAsync(string path, string? token, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), deadline.Token).ConfigureAwait(false);
            await socket.SendAsync(FastPathFrames.HelloFrame(token), SocketFlags.None, deadline.Token).ConfigureAwait(false);
            var header = new byte[FastPathFrames.HeaderLength];
            await ReceiveExactlyAsync(socket, header, deadline.Token).ConfigureAwait(false);
            FastPathFrames.TryReadHeader(header, out var bodyLength, out var kind, out _, out _);
            if (bodyLength is < 0 or > 64 * 1024)
            {
                throw new IOException($"the worker answered HELLO with a frame of {bodyLength} body bytes");
            }

            var body = new byte[bodyLength];
            await ReceiveExactlyAsync(socket, body, deadline.Token).ConfigureAwait(false);
            if (kind == FastPathFrames.Status)
            {
                var (code, message) = FastPathFrames.ReadStatus(body);
                throw new RpcException(new Status((StatusCode)code, message));
            }

            if (kind != FastPathFrames.Welcome || body.Length < 12)
            {
                throw new IOException($"the worker answered HELLO with frame kind {kind}, not WELCOME");
            }

            var version = BinaryPrimitives.ReadUInt16LittleEndian(body);
            var maxInFlight = (int)Math.Clamp(BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4)), 1u, 1u << 20);
            var maxMessageBytes = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(8)), int.MaxValue);
            if (version != FastPathFrames.Version)
            {
                throw new IOException($"the worker speaks fast-path version {version}, this client {FastPathFrames.Version}");
            }

            var connection = new FastPathConnection(socket, maxInFlight, maxMessageBytes) { MaxInFlight = maxInFlight };
            _ = Task.Run(() => connection.ReadLoopAsync(), CancellationToken.None);
            return connection;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new IOException($"the fast-path handshake did not finish within {timeout.TotalSeconds:0.#} s");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("the worker closed the connection during the handshake");
            }

            buffer = buffer[read..];
        }
    }

    /// <summary>
    /// One unary call: <paramref name="method"/> with <paramref name="request"/>,
    /// answered by a <typeparamref name="TReply"/>. Waits (without holding a
    /// thread) for a place when the worker's limit of calls in flight is reached.
    /// </summary>
    public async Task<TReply> CallAsync<TReply>(byte method, IMessage request, MessageParser<TReply> parser, DateTime? deadline, CancellationToken cancellationToken)
        where TReply : IMessage<TReply>
    {
        ThrowIfClosed();
        if (!_places.Wait(0))
        {
            try
            {
                await _places.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, "the call was cancelled while it waited for a place on the fast-path connection"));
            }
        }

        var call = new PendingCall<TReply>(this, parser);
        try
        {
            call.Id = NextId();
            var frame = Encode(call.Id, method, request, deadline, out var length);
            _pending[call.Id] = call;
            if (CloseReason is { } reason)
            {
                _pending.TryRemove(call.Id, out _);
                call.Fail(Lost(reason));
            }
            else
            {
                // Sent first, so a CANCEL (deadline, cancellation) can only follow its CALL.
                Send(new Outgoing(frame, length));
                call.Arm(deadline, cancellationToken);
            }
        }
        catch (RpcException e)
        {
            call.Fail(e);
        }

        return await call.Task.ConfigureAwait(false);
    }

    private uint NextId()
    {
        // 0 names the connection in STATUS frames; ids wrap after 2^32 calls, long after any call with the same id ended.
        var id = Interlocked.Increment(ref _nextId);
        return id == 0 ? Interlocked.Increment(ref _nextId) : id;
    }

    private byte[] Encode(uint id, byte method, IMessage request, DateTime? deadline, out int length)
    {
        var size = request.CalculateSize();
        if (size > _maxMessageBytes)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"received message of {size} bytes exceeds the limit of {_maxMessageBytes} bytes (--max-message-bytes)"));
        }

        ushort flags = 0;
        ulong timeoutMicros = 0;
        if (deadline is { } due)
        {
            var left = due - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, ""));
            }

            flags = FastPathFrames.FlagDeadline;
            timeoutMicros = (ulong)Math.Ceiling(left.TotalMicroseconds);
        }

        length = FastPathFrames.HeaderLength + FastPathFrames.CallPrefixLength + size;
        var frame = ArrayPool<byte>.Shared.Rent(length);
        var span = frame.AsSpan(0, length);
        FastPathFrames.WriteHeader(span, FastPathFrames.CallPrefixLength + size, FastPathFrames.Call, method, flags, id);
        BinaryPrimitives.WriteUInt64LittleEndian(span[FastPathFrames.HeaderLength..], timeoutMicros);
        var trace = span.Slice(FastPathFrames.HeaderLength + 8, 16);
        if (Activity.Current is { IdFormat: ActivityIdFormat.W3C } activity)
        {
            activity.TraceId.CopyTo(trace);
        }
        else
        {
            trace.Clear();
        }

        request.WriteTo(span[(FastPathFrames.HeaderLength + FastPathFrames.CallPrefixLength)..]);
        return frame;
    }

    private void ThrowIfClosed()
    {
        if (CloseReason is { } reason)
        {
            throw Lost(reason);
        }
    }

    private RpcException Lost(string reason) =>
        new(new Status(StatusCode.Unavailable, $"the fast-path connection to the worker closed: {_workerReason ?? reason}", new IOException(reason)));

    /// <summary>
    /// Queues a frame; writes it (and whatever queues meanwhile) unless a
    /// write is under way. Calls are bounded by their places, but a worker
    /// that stops reading (SIGSTOP) while callers keep giving up would let
    /// their CANCEL frames pile up: beyond a few per place the connection is
    /// closed instead, and calls fail over as from a dead worker.
    /// </summary>
    private void Send(Outgoing frame)
    {
        var queued = Interlocked.Increment(ref _queued);
        if (queued > (4 * MaxInFlight) + 64)
        {
            Close($"the worker stopped reading: {queued} frames wait to be written");
            return;
        }

        _outbox.Enqueue(frame);
        if (Interlocked.CompareExchange(ref _writing, 1, 0) == 0)
        {
            _ = WriteOutboxAsync();
        }
    }

    private async Task WriteOutboxAsync()
    {
        try
        {
            do
            {
                while (_outbox.TryDequeue(out var first))
                {
                    Interlocked.Decrement(ref _queued);
                    if (_outbox.IsEmpty || first.Length >= CoalesceBytes)
                    {
                        // Alone (the usual case at low concurrency) or large: sent as it is.
                        await SendAllAsync(first.Buffer.AsMemory(0, first.Length)).ConfigureAwait(false);
                        first.Return();
                        continue;
                    }

                    var batched = 0;
                    var next = first;
                    while (true)
                    {
                        next.Buffer.AsSpan(0, next.Length).CopyTo(_batch.AsSpan(batched));
                        batched += next.Length;
                        next.Return();
                        if (!_outbox.TryPeek(out var peeked) || batched + peeked.Length > CoalesceBytes || !_outbox.TryDequeue(out next))
                        {
                            break;
                        }

                        Interlocked.Decrement(ref _queued);
                    }

                    await SendAllAsync(_batch.AsMemory(0, batched)).ConfigureAwait(false);
                }

                Volatile.Write(ref _writing, 0);
            }
            while (!_outbox.IsEmpty && Interlocked.CompareExchange(ref _writing, 1, 0) == 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Close($"writing to the worker failed: {e.Message}");
        }
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await _socket.SendAsync(bytes, SocketFlags.None).ConfigureAwait(false);
            bytes = bytes[sent..];
        }
    }

    /// <summary>
    /// Reads frames and completes their calls. When one reply arrived alone
    /// and the next read is already waiting on the socket, the rest of the
    /// loop moves to that read's continuation and the call's continuation
    /// runs right here, on the thread the socket woke: one thread hand-off
    /// per round trip, as for a bare socket. Otherwise (several replies at
    /// once, or more bytes already there) the calls' continuations are queued
    /// to the thread pool, so none waits behind another or behind the reader.
    /// </summary>
    private async Task ReadLoopAsync(ValueTask<int>? pendingRead = null)
    {
        var ready = _ready;
        try
        {
            if (pendingRead is { } first && !Received(await first.ConfigureAwait(false)))
            {
                return;
            }

            while (true)
            {
                while (FastPathFrames.TryReadHeader(_readBuffer.AsSpan(_readStart, _readEnd - _readStart), out var bodyLength, out var kind, out _, out var id))
                {
                    if (bodyLength < 0 || bodyLength > _maxReplyBytes)
                    {
                        Close($"the worker sent a frame of {bodyLength} body bytes, beyond {_maxReplyBytes}");
                        return;
                    }

                    var total = FastPathFrames.HeaderLength + (int)bodyLength;
                    if (_readEnd - _readStart < total)
                    {
                        if (total > _readBuffer.Length)
                        {
                            var larger = ArrayPool<byte>.Shared.Rent(total);
                            _readBuffer.AsSpan(_readStart, _readEnd - _readStart).CopyTo(larger);
                            ArrayPool<byte>.Shared.Return(_readBuffer);
                            (_readBuffer, _readEnd, _readStart) = (larger, _readEnd - _readStart, 0);
                        }

                        break;
                    }

                    if (!Dispatch(kind, id, _readBuffer.AsSpan(_readStart + FastPathFrames.HeaderLength, (int)bodyLength), ready))
                    {
                        DeliverQueued(ready);
                        return;
                    }

                    _readStart += total;
                }

                if (_readStart == _readEnd)
                {
                    _readStart = _readEnd = 0;
                    if (_readBuffer.Length > ReadChunk)
                    {
                        ArrayPool<byte>.Shared.Return(_readBuffer);
                        _readBuffer = ArrayPool<byte>.Shared.Rent(ReadChunk);
                    }
                }
                else if (_readBuffer.Length - _readEnd < ReadChunk / 4)
                {
                    _readBuffer.AsSpan(_readStart, _readEnd - _readStart).CopyTo(_readBuffer);
                    (_readEnd, _readStart) = (_readEnd - _readStart, 0);
                }

                var read = _socket.ReceiveAsync(_readBuffer.AsMemory(_readEnd), SocketFlags.None);
                if (ready.Count == 1 && !read.IsCompleted)
                {
                    // The loop goes on in the read's continuation; nothing of it is touched here any more.
                    var only = ready[0];
                    ready.Clear();
                    _ = ReadLoopAsync(read);
                    only.Deliver(inline: true);
                    return;
                }

                DeliverQueued(ready);
                if (!Received(await read.ConfigureAwait(false)))
                {
                    return;
                }
            }
        }
        catch (Exception e)
        {
            // Whatever broke the loop, no call may wait on a connection nobody reads.
            DeliverQueued(ready);
            Close($"reading from the worker failed: {e.Message}");
        }
    }

    /// <summary>Counts bytes a read brought; false (the connection closed) at the end of the stream.</summary>
    private bool Received(int read)
    {
        if (read == 0)
        {
            Close(_readEnd > _readStart ? "the worker closed the connection inside a frame" : "the worker closed the connection");
            return false;
        }

        _readEnd += read;
        return true;
    }

    private static void DeliverQueued(List<IPendingCall> ready)
    {
        foreach (var call in ready)
        {
            call.Deliver(inline: false);
        }

        ready.Clear();
    }

    /// <summary>Takes the call a frame answers (its outcome read now, delivered later); false when the connection is done.</summary>
    private bool Dispatch(byte kind, uint id, ReadOnlySpan<byte> body, List<IPendingCall> ready)
    {
        switch (kind)
        {
            case FastPathFrames.Reply:
                if (_pending.TryRemove(id, out var answered) && answered.Accept(body))
                {
                    ready.Add(answered);
                }

                return true;
            case FastPathFrames.Status when id == 0:
                // About the connection: the worker closes it next.
                _workerReason = FastPathFrames.ReadStatus(body).Message;
                return true;
            case FastPathFrames.Status:
                if (_pending.TryRemove(id, out var failed))
                {
                    var (code, message) = FastPathFrames.ReadStatus(body);
                    if (failed.Reject(new RpcException(new Status((StatusCode)code, message))))
                    {
                        ready.Add(failed);
                    }
                }

                return true;
            default:
                Close($"the worker sent an unknown frame kind {kind}");
                return false;
        }
    }

    /// <summary>Takes no more calls and fails those in flight with UNAVAILABLE.</summary>
    public void Close(string reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null)
        {
            return;
        }

        _socket.Dispose();
        var lost = Lost(reason);
        foreach (var id in _pending.Keys)
        {
            if (_pending.TryRemove(id, out var call))
            {
                call.Fail(lost);
            }
        }

        _closed.TrySetResult();
    }

    public void Dispose() => Close("the client closed the connection");

    /// <summary>The caller stopped waiting: the worker is told to stop too.</summary>
    private void Abandon(uint id)
    {
        if (_pending.TryRemove(id, out _) && CloseReason is null)
        {
            var frame = ArrayPool<byte>.Shared.Rent(FastPathFrames.HeaderLength);
            FastPathFrames.WriteHeader(frame, 0, FastPathFrames.Cancel, 0, 0, id);
            Send(new Outgoing(frame, FastPathFrames.HeaderLength));
        }
    }

    private void ReleasePlace() => _places.Release();

    private readonly record struct Outgoing(byte[] Buffer, int Length)
    {
        public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
    }

    private interface IPendingCall
    {
        /// <summary>Reads the reply; true when this completes the call (then <see cref="Deliver"/> it).</summary>
        bool Accept(ReadOnlySpan<byte> body);

        /// <summary>Takes a failure from the worker; true when this completes the call.</summary>
        bool Reject(RpcException error);

        /// <summary>Completes the caller's task: its continuation runs here, or on the thread pool.</summary>
        void Deliver(bool inline);

        /// <summary>Completes the call with <paramref name="error"/> at once (continuation on the thread pool), unless it is done.</summary>
        void Fail(RpcException error);
    }

    /// <summary>
    /// A call in flight. Whichever comes first — the reply, a STATUS, the
    /// deadline, the caller's cancellation, the connection closing — completes
    /// it; the winner gives back its place (after a CANCEL, if any, is queued,
    /// so the worker has freed the call's place before it sees another call).
    /// Continuations run on the thread pool unless the reader delivers inline.
    /// </summary>
    private sealed class PendingCall<TReply>(FastPathConnection owner, MessageParser<TReply> parser)
        : TaskCompletionSource<TReply>(TaskCreationOptions.None), IPendingCall
        where TReply : IMessage<TReply>
    {
        // Guards the timer and the registration: the reply may come before they are set up.
        private readonly Lock _lock = new();
        private int _done;
        private ITimer? _deadline;
        private CancellationTokenRegistration _cancellation;
        private TReply? _reply;
        private RpcException? _error;

        public uint Id { get; set; }

        /// <summary>Starts the deadline's timer and watches the caller's token (nothing when the call is already done).</summary>
        public void Arm(DateTime? deadline, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                if (_done != 0)
                {
                    return;
                }

                if (deadline is { } due)
                {
                    var left = due - DateTime.UtcNow;
                    _deadline = TimeProvider.System.CreateTimer(static s => ((PendingCall<TReply>)s!).GiveUp(StatusCode.DeadlineExceeded), this, left > TimeSpan.Zero ? left : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
                }

                if (cancellationToken.CanBeCanceled)
                {
                    // Runs GiveUp at once (re-entering this lock) when the token is already cancelled.
                    _cancellation = cancellationToken.UnsafeRegister(static s => ((PendingCall<TReply>)s!).GiveUp(StatusCode.Cancelled), this);
                }
            }
        }

        public bool Accept(ReadOnlySpan<byte> body)
        {
            TReply reply;
            try
            {
                reply = parser.ParseFrom(body);
            }
            catch (InvalidProtocolBufferException e)
            {
                return Reject(new RpcException(new Status(StatusCode.Internal, $"the worker's reply could not be read: {e.Message}")));
            }

            if (!Finish())
            {
                return false;
            }

            _reply = reply;
            return true;
        }

        public bool Reject(RpcException error)
        {
            if (!Finish())
            {
                return false;
            }

            _error = error;
            return true;
        }

        public void Deliver(bool inline)
        {
            if (!inline)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static call => call.Deliver(inline: true), this, preferLocal: false);
                return;
            }

            if (_error is { } error)
            {
                TrySetException(error);
            }
            else
            {
                TrySetResult(_reply!);
            }
        }

        public void Fail(RpcException error)
        {
            if (Finish())
            {
                _error = error;
                Deliver(inline: false);
            }
        }

        private void GiveUp(StatusCode code)
        {
            if (Volatile.Read(ref _done) != 0)
            {
                return;
            }

            owner.Abandon(Id);
            Fail(new RpcException(new Status(code, code == StatusCode.Cancelled ? "the call was cancelled by the caller" : "")));
        }

        /// <summary>True for the one path that completes the call.</summary>
        private bool Finish()
        {
            lock (_lock)
            {
                if (_done != 0)
                {
                    return false;
                }

                _done = 1;
                _deadline?.Dispose();
                _cancellation.Unregister();
            }

            owner.ReleasePlace();
            return true;
        }
    }
}
