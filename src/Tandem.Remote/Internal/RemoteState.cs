using Google.Protobuf;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Remote.Internal.Pool;
using Tandem.Remote.Internal.SharedMemory;

namespace Tandem.Remote.Internal;

/// <summary>
/// A state (vector collection) held by every worker under a client-chosen id.
/// Made from tensors, its tensors stay on the client — in a dedicated
/// shared-memory region when large, else in managed memory — so the same
/// CreateState request can be replayed into a new or restarted worker, and
/// the state can be rebuilt on a fallback backend (in process, so the
/// rebuild never waits on I/O). Loaded from the state repository
/// (<see cref="FromStored"/>), it keeps nothing: the request names the
/// stored (name, version), each worker loads it from its repository, and a
/// fallback loads it from the client's. Disposing it forgets it at once and
/// drops it on the workers in the background.
/// </summary>
internal sealed unsafe class RemoteState : IKernelState, IFallbackState
{
    private readonly WorkerPool _pool;
    private readonly byte[]? _inline;
    private readonly TensorLayout[] _layout;
    // The kernel whose call created the state: its rebuild on a fallback backend is described the same way.
    private readonly KernelDescriptor _creator;
    private readonly Dictionary<BackendKind, IKernelState> _fallbacks = [];
    private readonly Func<IInProcessKernelBackend, IKernelState>? _rebuild;
    private int _disposed;

    private RemoteState(WorkerPool pool, string kind, KernelDescriptor creator, string name, long version, long sizeBytes, Func<IInProcessKernelBackend, IKernelState> rebuild)
    {
        _pool = pool;
        _creator = creator;
        _layout = [];
        _rebuild = rebuild;
        Kind = kind;
        SizeBytes = sizeBytes;
        Id = $"state-{Guid.NewGuid():N}";
        Request = new CreateStateRequest { StateId = Id, Kind = kind, Stored = new StoredStateRef { Name = name, Version = (ulong)version } };
    }

    private RemoteState(WorkerPool pool, string kind, KernelDescriptor creator, MappedRegion? region, byte[]? inline, TensorLayout[] layout, long sizeBytes)
    {
        _pool = pool;
        _creator = creator;
        Kind = kind;
        Region = region;
        _inline = inline;
        _layout = layout;
        SizeBytes = sizeBytes;
        Id = $"state-{Guid.NewGuid():N}";
        Request = new CreateStateRequest { StateId = Id, Kind = kind };
        foreach (var tensor in layout)
        {
            var message = new Tensor { Dtype = (DType)tensor.DType };
            message.Shape.Add(tensor.Shape);
            if (tensor.DType != 0)
            {
                if (region is not null)
                {
                    message.Shared = new SharedMemoryRef { Region = region.Name, Offset = (ulong)tensor.Offset, Length = (ulong)tensor.Length };
                }
                else
                {
                    message.InlineData = ByteString.CopyFrom(inline!, (int)tensor.Offset, (int)tensor.Length);
                }
            }

            Request.Tensors.Add(message);
        }
    }

    public string Id { get; }

    public string Kind { get; }

    public BackendKind Backend => BackendKind.Remote;

    public long SizeBytes { get; }

    /// <summary>The region holding the tensors, or null when they travel inline.</summary>
    public MappedRegion? Region { get; }

    /// <summary>The request that creates (or replays) this state on a worker.</summary>
    public CreateStateRequest Request { get; }

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// <see cref="Request"/> with the region's tensors copied into the
    /// message, for a worker that does not read this client's shared memory
    /// (another host). Refused with RESOURCE_EXHAUSTED when the message
    /// would exceed the worker's limit: such a state reaches other hosts
    /// from the state repository.
    /// </summary>
    public CreateStateRequest InlineRequest(long maxMessageBytes, string worker)
    {
        if (Region is not { } region)
        {
            return Request;
        }

        // Tensor bytes plus a little framing per tensor.
        var bytes = _layout.Sum(t => t.Length + 64) + 256;
        if (bytes > maxMessageBytes)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.ResourceExhausted,
                $"state {Id} ({SizeBytes:N0} bytes) cannot reach worker {worker}: it does not read this client's shared memory and the state exceeds one message ({maxMessageBytes:N0} bytes, the worker's --max-message-bytes); store it in the state repository (Tandem:StateRepository) so the worker loads it itself"));
        }

        var request = new CreateStateRequest { StateId = Id, Kind = Kind };
        foreach (var tensor in _layout)
        {
            var message = new Tensor { Dtype = (DType)tensor.DType };
            message.Shape.Add(tensor.Shape);
            if (tensor.DType != 0)
            {
                message.InlineData = ByteString.CopyFrom(region.Slice(tensor.Offset, tensor.Length));
            }

            request.Tensors.Add(message);
        }

        return request;
    }

    /// <summary>Copies the call's tensors into a region (at or above <paramref name="threshold"/> bytes in all) or managed memory.</summary>
    public static RemoteState Copy(WorkerPool pool, string kind, KernelCall tensors, int threshold)
    {
        ref var args = ref tensors.Args;
        var layout = new TensorLayout[args.InputCount];
        long total = 0;
        for (var i = 0; i < args.InputCount; i++)
        {
            var t = args.Inputs[i];
            var shape = new long[t.Rank];
            for (var axis = 0; axis < shape.Length; axis++)
            {
                shape[axis] = t.Shape[axis];
            }

            layout[i] = new TensorLayout(t.DType, shape, total, (long)t.ByteLength);
            total += Align((long)t.ByteLength);
        }

        MappedRegion? region = total >= threshold ? pool.SharedMemory.CreateDedicated(total) : null;
        var inline = region is null ? new byte[total] : null;
        for (var i = 0; i < args.InputCount; i++)
        {
            var t = args.Inputs[i];
            if (t.DType == 0)
            {
                continue;
            }

            var source = new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteLength));
            var target = region is not null ? region.Slice(layout[i].Offset, layout[i].Length) : inline.AsSpan((int)layout[i].Offset, (int)layout[i].Length);
            source.CopyTo(target);
        }

        return new RemoteState(pool, kind, tensors.Descriptor, region, inline, layout, total);
    }

    /// <summary>A state the workers load from their repository as (<paramref name="name"/>, <paramref name="version"/>); nothing is copied here.</summary>
    public static RemoteState FromStored(WorkerPool pool, string kind, KernelDescriptor creator, string name, long version, long sizeBytes, Func<IInProcessKernelBackend, IKernelState> rebuild) =>
        new(pool, kind, creator, name, version, sizeBytes, rebuild);

    public IKernelState StateFor(IInProcessKernelBackend backend)
    {
        lock (_fallbacks)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            if (!_fallbacks.TryGetValue(backend.Kind, out var state))
            {
                state = Rebuild(backend);
                _fallbacks[backend.Kind] = state;
            }

            return state;
        }
    }

    private IKernelState Rebuild(IInProcessKernelBackend backend)
    {
        if (_rebuild is not null)
        {
            return _rebuild(backend);
        }

        fixed (byte* inline = _inline)
        {
            var baseAddress = Region is not null ? Region.Pointer : inline;
            using var call = new KernelCall(_creator);
            foreach (var tensor in _layout)
            {
                var data = baseAddress + tensor.Offset;
                _ = tensor.DType switch
                {
                    0 => call.Absent(),
                    Tandem.Internal.Native.NativeDType.F32 => call.Input((float*)data, (int)(tensor.Length / 4), tensor.Shape),
                    Tandem.Internal.Native.NativeDType.F64 => call.Input((double*)data, (int)(tensor.Length / 8), tensor.Shape),
                    Tandem.Internal.Native.NativeDType.I64 => call.Input((long*)data, (int)(tensor.Length / 8), tensor.Shape),
                    Tandem.Internal.Native.NativeDType.I32 => call.Input((int*)data, (int)(tensor.Length / 4), tensor.Shape),
                    _ => call.Input(data, (int)tensor.Length, tensor.Shape),
                };
            }

            return backend.CreateState(Kind, call);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // The pool deletes the region once the workers have dropped the state.
        _pool.DropEverywhere(this);
        lock (_fallbacks)
        {
            foreach (var state in _fallbacks.Values)
            {
                state.Dispose();
            }

            _fallbacks.Clear();
        }
    }

    internal static long Align(long bytes) => (bytes + 63) & ~63L;

    private sealed record TensorLayout(uint DType, long[] Shape, long Offset, long Length);
}
