using Google.Protobuf;
using Grpc.Core;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Remote.Internal.Pool;

namespace Tandem.Remote.Internal;

/// <summary>
/// A streaming kernel (such as hash.blake3) on one worker through client-streaming
/// InvokeStream: data goes out in chunks as it is appended (HTTP/2 flow
/// control is the backpressure), so memory stays constant. The header must
/// name the output size before any data, so the first <see cref="BufferLimit"/>
/// bytes are held back: a short stream learns the exact size at finalizing; a
/// longer one asks for <see cref="OpenedOutputBytes"/> bytes of (prefix-stable)
/// extended output and serves any digest up to that length. Nothing here
/// holds a thread while the worker reads or answers; the caller's
/// cancellation ends a pending write or wait and cancels the call.
/// </summary>
internal sealed class RemoteStream(WorkerPool pool, string kernel, DateTime? deadline) : IKernelStream
{
    internal const int BufferLimit = 1 << 20;
    internal const int OpenedOutputBytes = 1024;
    private const int MaxMessageData = 1 << 20;

    private byte[]? _buffer;
    private int _buffered;
    private WorkerConnection? _worker;
    private AsyncClientStreamingCall<StreamRequest, InvokeReply>? _call;
    private int _outputBytes;
    private bool _done;
    private bool _cancelled;

    public ValueTask AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (Unusable(cancellationToken) is { } error)
        {
            return ValueTask.FromException(error);
        }

        if (_call is null && _buffered + data.Length <= BufferLimit)
        {
            _buffer ??= new byte[BufferLimit];
            data.Span.CopyTo(_buffer.AsSpan(_buffered));
            _buffered += data.Length;
            return ValueTask.CompletedTask;
        }

        return OpenAndSendAsync(data, cancellationToken);
    }

    private async ValueTask OpenAndSendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await OpenAsync(OpenedOutputBytes, cancellationToken).ConfigureAwait(false);
        await SendAsync(data, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask FinalizeAsync(Memory<byte> output, CancellationToken cancellationToken)
    {
        if (Unusable(cancellationToken) is { } error)
        {
            throw error;
        }

        if (_call is null)
        {
            await OpenAsync(output.Length, cancellationToken).ConfigureAwait(false);
        }
        else if (output.Length > _outputBytes)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, $"a remote hash stream longer than {BufferLimit} bytes yields at most {_outputBytes} digest bytes; hash it with HashAsync and the length up front, or on another backend", kernel, BackendKind.Remote);
        }

        InvokeReply reply;
        try
        {
            await _call!.RequestStream.CompleteAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            reply = await _call.ResponseAsync.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or RpcException)
        {
            throw Abandon("while it waited for the worker's digest", e);
        }
        catch (RpcException e)
        {
            throw Fail(e);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw Lost(e);
        }

        var digest = reply.Outputs.Count == 1 ? reply.Outputs[0].InlineData.Memory : default;
        if (digest.Length < output.Length)
        {
            throw new TandemException(TandemStatusCode.Internal, $"the worker returned a {digest.Length}-byte digest, expected {_outputBytes}", kernel, BackendKind.Remote);
        }

        digest[..output.Length].CopyTo(output);
        Release(TandemStatusCode.Ok);
    }

    private async ValueTask OpenAsync(int outputBytes, CancellationToken cancellationToken)
    {
        if (_call is not null)
        {
            return;
        }

        var worker = pool.Pick("", null) ?? throw pool.NoWorkerServing(kernel, "no remote worker is serving");
        _worker = worker;
        _outputBytes = outputBytes;
        _call = worker.Client.InvokeStream(RemoteKernelBackend.Headers(), deadline);
        var header = new StreamHeader { Kernel = kernel, KernelVersion = pool.Contract(kernel)?.Version ?? 1 };
        var spec = new OutputSpec { Dtype = DType.U8 };
        spec.Shape.Add(outputBytes);
        header.Outputs.Add(spec);
        await WriteAsync(new StreamRequest { Header = header }, cancellationToken).ConfigureAwait(false);
        if (_buffered > 0)
        {
            await SendAsync(_buffer.AsMemory(0, _buffered), cancellationToken).ConfigureAwait(false);
        }

        _buffer = null;
        _buffered = 0;
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var part = data[..Math.Min(data.Length, MaxMessageData)];
            await WriteAsync(new StreamRequest { Data = ByteString.CopyFrom(part.Span) }, cancellationToken).ConfigureAwait(false);
            data = data[part.Length..];
        }
    }

    /// <summary>Writes one message; HTTP/2 flow control may hold it, without holding a thread, until the worker reads.</summary>
    private async ValueTask WriteAsync(StreamRequest message, CancellationToken cancellationToken)
    {
        try
        {
            await _call!.RequestStream.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or RpcException)
        {
            throw Abandon("while the stream was sent to the worker", e);
        }
        catch (RpcException e)
        {
            throw Fail(e);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw Lost(e);
        }
        catch (InvalidOperationException)
        {
            // The call already ended (the worker answered early with an error): its status says why.
            var status = _call!.GetStatus();
            throw Fail(new RpcException(status));
        }
    }

    private TandemException? Unusable(CancellationToken cancellationToken) =>
        _cancelled ? RemoteKernelBackend.Cancelled(kernel, "earlier, so this stream takes no more calls; open a new one", null)
        : cancellationToken.IsCancellationRequested ? RemoteKernelBackend.Cancelled(kernel, "before the stream call started", null)
        : null;

    /// <summary>
    /// The caller cancelled mid-message: what the worker got is unknown, so
    /// the call is cancelled and the stream takes nothing more.
    /// </summary>
    private TandemException Abandon(string when, Exception e)
    {
        _cancelled = true;
        Release(TandemStatusCode.Cancelled);
        _call?.Dispose();
        return RemoteKernelBackend.Cancelled(kernel, $"{when}; the stream call was cancelled", e);
    }

    /// <summary>
    /// The HTTP/2 request under the stream was aborted (the worker or its
    /// connection died mid-message; grpc-dotnet reports it as an I/O error
    /// rather than a status): UNAVAILABLE, as a lost worker is everywhere.
    /// </summary>
    private TandemException Lost(Exception e)
    {
        var error = new TandemException(TandemStatusCode.Unavailable, $"worker {_worker?.Name ?? "?"} lost the stream's connection: {e.Message}", kernel, BackendKind.Remote, innerException: e);
        Release(error.Code);
        return error;
    }

    private TandemException Fail(RpcException e)
    {
        var error = RemoteErrors.From(e, kernel, _worker?.Name ?? "?");
        Release(error.Code);
        return error;
    }

    private void Release(TandemStatusCode code)
    {
        if (_done || _worker is null)
        {
            return;
        }

        _done = true;
        if (code == TandemStatusCode.Ok)
        {
            _worker.Succeeded();
        }
        else
        {
            _worker.Failed(code);
        }
    }

    public void Dispose()
    {
        Release(TandemStatusCode.Cancelled);
        _call?.Dispose();
        _buffer = null;
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
