using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Caching;

/// <summary>
/// Results of idempotent, deterministic kernels, keyed by a SHA-256 of the
/// kernel, its version, the parameters, the state's identity and every input
/// byte, bounded by entries and bytes (least recently used evicted first).
/// Dropping a state purges its entries.
/// </summary>
internal sealed class ResultCache(Func<CacheOptions> options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Hash, LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _recency = new();
    private readonly ConditionalWeakTable<object, StateId> _stateIds = new();
    private long _bytes;
    private long _nextStateId;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Copies a cached result into the call's outputs; false on a miss.</summary>
    public bool TryRead(KernelCall call, out Hash key)
    {
        key = KeyOf(call);
        byte[][] outputs;
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var node))
            {
                return false;
            }

            _recency.Remove(node);
            _recency.AddFirst(node);
            outputs = node.Value.Outputs;
        }

        for (var o = 0; o < outputs.Length; o++)
        {
            outputs[o].CopyTo(call.OutputSpan<byte>(o));
        }

        return true;
    }

    /// <summary>Stores the call's outputs under <paramref name="key"/>.</summary>
    public void Write(Hash key, KernelCall call)
    {
        var outputs = new byte[call.OutputCount][];
        long size = 0;
        for (var o = 0; o < outputs.Length; o++)
        {
            outputs[o] = call.OutputSpan<byte>(o).ToArray();
            size += outputs[o].Length;
        }

        var settings = options();
        if (size > settings.MaxBytes)
        {
            return;
        }

        lock (_lock)
        {
            if (_entries.ContainsKey(key))
            {
                return;
            }

            _entries[key] = _recency.AddFirst(new Entry(key, outputs, size, StateOf(call.State)));
            _bytes += size;
            while (_entries.Count > settings.MaxEntries || _bytes > settings.MaxBytes)
            {
                Remove(_recency.Last!);
            }
        }
    }

    /// <summary>Forgets every result computed from <paramref name="state"/>.</summary>
    public void Invalidate(IKernelState state)
    {
        var id = StateOf(state);
        lock (_lock)
        {
            for (var node = _recency.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.State == id)
                {
                    Remove(node);
                }

                node = next;
            }
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        _recency.Remove(node);
        _entries.Remove(node.Value.Key);
        _bytes -= node.Value.Size;
    }

    private long StateOf(object? state) =>
        state is null ? 0 : _stateIds.GetValue(state, _ => new StateId(Interlocked.Increment(ref _nextStateId))).Value;

    private Hash KeyOf(KernelCall call)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> scratch = stackalloc byte[8];
        sha.AppendData(Encoding.UTF8.GetBytes(call.Kernel));
        Append(sha, scratch, call.Descriptor.Version);
        Append(sha, scratch, StateOf(call.State));
        for (var p = 0; p < call.ParamCount; p++)
        {
            Append(sha, scratch, call.Args.Params[p].IntValue);
            Append(sha, scratch, BitConverter.DoubleToInt64Bits(call.Args.Params[p].FloatValue));
        }

        for (var i = 0; i < call.InputCount; i++)
        {
            ref var tensor = ref call.Args.Inputs[i];
            Append(sha, scratch, tensor.DType);
            for (var axis = 0; axis < tensor.Rank; axis++)
            {
                Append(sha, scratch, tensor.Shape[axis]);
            }

            sha.AppendData(call.InputSpan<byte>(i));
        }

        for (var o = 0; o < call.OutputCount; o++)
        {
            ref var tensor = ref call.Args.Outputs[o];
            for (var axis = 0; axis < tensor.Rank; axis++)
            {
                Append(sha, scratch, tensor.Shape[axis]);
            }
        }

        Span<byte> digest = stackalloc byte[32];
        sha.GetHashAndReset(digest);
        return new Hash(BitConverter.ToInt64(digest), BitConverter.ToInt64(digest[8..]), BitConverter.ToInt64(digest[16..]), BitConverter.ToInt64(digest[24..]));
    }

    private static void Append(IncrementalHash sha, Span<byte> scratch, long value)
    {
        BitConverter.TryWriteBytes(scratch, value);
        sha.AppendData(scratch);
    }

    internal readonly record struct Hash(long A, long B, long C, long D);

    private sealed record Entry(Hash Key, byte[][] Outputs, long Size, long State);

    private sealed class StateId(long value)
    {
        public long Value { get; } = value;
    }
}
