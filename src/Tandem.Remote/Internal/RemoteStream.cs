using Google.Protobuf;
using Grpc.Core;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Remote.Internal.Pool;

namespace Tandem.Remote.Internal;

/// <summary>
/// A streaming kernel (hash.blake3) on one worker through client-streaming
/// InvokeStream: data goes out in chunks as it is appended (HTTP/2 flow
/// control is the backpressure), so memory stays constant. The header must
/// name the output size before any data, so the first <see cref="BufferLimit"/>
/// bytes are held back: a short stream learns the exact size at Finalize; a
/// longer one asks for <see cref="OpenedOutputBytes"/> bytes of (prefix-stable)
/// extended output and serves any digest up to that length.
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

    public void Append(ReadOnlySpan<byte> data)
    {
        if (_call is null && _buffered + data.Length <= BufferLimit)
        {
            _buffer ??= new byte[BufferLimit];
            data.CopyTo(_buffer.AsSpan(_buffered));
            _buffered += data.Length;
            return;
        }

        Open(OpenedOutputBytes);
        Send(data);
    }

    public void Finalize(Span<byte> output)
    {
        if (_call is null)
        {
            Open(output.Length);
        }
        else if (output.Length > _outputBytes)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, $"a remote hash stream longer than {BufferLimit} bytes yields at most {_outputBytes} digest bytes; hash it with HashAsync and the length up front, or on another backend", kernel, BackendKind.Remote);
        }

        try
        {
            _call!.RequestStream.CompleteAsync().GetAwaiter().GetResult();
            var reply = _call.ResponseAsync.GetAwaiter().GetResult();
            var digest = reply.Outputs.Count == 1 ? reply.Outputs[0].InlineData.Span : default;
            if (digest.Length < output.Length)
            {
                throw new TandemException(TandemStatusCode.Internal, $"the worker returned a {digest.Length}-byte digest, expected {_outputBytes}", kernel, BackendKind.Remote);
            }

            digest[..output.Length].CopyTo(output);
            Release(TandemStatusCode.Ok);
        }
        catch (RpcException e)
        {
            throw Fail(e);
        }
    }

    private void Open(int outputBytes)
    {
        if (_call is not null)
        {
            return;
        }

        var worker = pool.Pick("", null) ?? throw RemoteErrors.Unavailable(kernel, "no remote worker is serving");
        _worker = worker;
        _outputBytes = outputBytes;
        _call = worker.Client.InvokeStream(RemoteKernelBackend.Headers(), deadline);
        var header = new StreamHeader { Kernel = kernel, KernelVersion = KernelContracts.Blake3.Version };
        var spec = new OutputSpec { Dtype = DType.U8 };
        spec.Shape.Add(outputBytes);
        header.Outputs.Add(spec);
        Write(new StreamRequest { Header = header });
        if (_buffered > 0)
        {
            Send(_buffer.AsSpan(0, _buffered));
        }

        _buffer = null;
        _buffered = 0;
    }

    private void Send(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var part = data[..Math.Min(data.Length, MaxMessageData)];
            Write(new StreamRequest { Data = ByteString.CopyFrom(part) });
            data = data[part.Length..];
        }
    }

    private void Write(StreamRequest message)
    {
        try
        {
            _call!.RequestStream.WriteAsync(message).GetAwaiter().GetResult();
        }
        catch (RpcException e)
        {
            throw Fail(e);
        }
        catch (InvalidOperationException)
        {
            // The call already ended (the worker answered early with an error): its status says why.
            var status = _call!.GetStatus();
            throw Fail(new RpcException(status));
        }
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
}
