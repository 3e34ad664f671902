using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;

namespace Tandem.Internal.Dispatch;

/// <summary>
/// Calls with equal keys can share a batch: same kernel, backend, state (by
/// identity), parameter values and row shapes (every axis but the first).
/// A call finds its queue through a <see cref="Probe"/>, which reads the call
/// in place and allocates nothing; a key is made only for a new queue.
/// </summary>
internal sealed class BatchKey
{
    // The longest signature: the counts; two words per parameter; per
    // tensor, its dtype and rank, then axes 1 to 3.
    private const int MaxWords = 1 + (2 * NativeCallArgs.Capacity) + (2 * NativeCallArgs.Capacity * 4);

    private readonly object? _state;
    private readonly string _kernel;
    private readonly long[] _signature;
    private readonly int _hash;

    private BatchKey(IKernelBackend backend, object? state, string kernel, long[] signature, int hash)
    {
        Backend = backend;
        _state = state;
        _kernel = kernel;
        _signature = signature;
        _hash = hash;
    }

    /// <summary>Compares keys, and a <see cref="Probe"/> with a key.</summary>
    public static IEqualityComparer<BatchKey> Comparer { get; } = new Equality();

    public IKernelBackend Backend { get; }

    public static BatchKey Of(Probe probe)
    {
        Span<long> words = stackalloc long[MaxWords];
        var signature = words[..Signature(probe.Call, words)];
        return new BatchKey(probe.Backend, probe.Call.State, probe.Call.Kernel, signature.ToArray(), Hash(probe.Backend, probe.Call.State, probe.Call.Kernel, signature));
    }

    private bool Names(IKernelBackend backend, object? state, string kernel) =>
        ReferenceEquals(Backend, backend) && ReferenceEquals(_state, state) && string.Equals(_kernel, kernel, StringComparison.Ordinal);

    /// <summary>Writes the call's parameter values and row shapes into <paramref name="words"/>; returns how many it wrote.</summary>
    private static int Signature(KernelCall call, Span<long> words)
    {
        var length = 0;
        words[length++] = call.ParamCount | (call.InputCount << 8) | (call.OutputCount << 16);
        for (var p = 0; p < call.ParamCount; p++)
        {
            words[length++] = call.Args.Params[p].IntValue;
            words[length++] = BitConverter.DoubleToInt64Bits(call.Args.Params[p].FloatValue);
        }

        length = RowShapes(words, length, ref call.Args.Inputs, call.InputCount);
        return RowShapes(words, length, ref call.Args.Outputs, call.OutputCount);
    }

    private static int RowShapes(Span<long> words, int length, ref NativeTensorArray tensors, int count)
    {
        for (var i = 0; i < count; i++)
        {
            words[length++] = tensors[i].DType | ((long)tensors[i].Rank << 32);
            for (var axis = 1; axis < tensors[i].Rank; axis++)
            {
                words[length++] = tensors[i].Shape[axis];
            }
        }

        return length;
    }

    private static int Hash(IKernelBackend backend, object? state, string kernel, ReadOnlySpan<long> signature)
    {
        var hash = default(HashCode);
        hash.Add(RuntimeHelpers.GetHashCode(backend));
        hash.Add(state is null ? 0 : RuntimeHelpers.GetHashCode(state));
        hash.Add(kernel);
        hash.AddBytes(MemoryMarshal.AsBytes(signature));
        return hash.ToHashCode();
    }

    /// <summary>A call's key read in place, to look its queue up without allocating.</summary>
    public readonly struct Probe(IKernelBackend backend, KernelCall call)
    {
        public IKernelBackend Backend { get; } = backend;

        public KernelCall Call { get; } = call;
    }

    private sealed class Equality : IEqualityComparer<BatchKey>, IAlternateEqualityComparer<Probe, BatchKey>
    {
        public bool Equals(BatchKey? x, BatchKey? y) =>
            ReferenceEquals(x, y)
            || (x is not null && y is not null && x._hash == y._hash && x.Names(y.Backend, y._state, y._kernel) && x._signature.AsSpan().SequenceEqual(y._signature));

        public int GetHashCode(BatchKey key) => key._hash;

        public bool Equals(Probe probe, BatchKey key)
        {
            if (!key.Names(probe.Backend, probe.Call.State, probe.Call.Kernel))
            {
                return false;
            }

            Span<long> words = stackalloc long[MaxWords];
            return words[..Signature(probe.Call, words)].SequenceEqual(key._signature);
        }

        public int GetHashCode(Probe probe)
        {
            Span<long> words = stackalloc long[MaxWords];
            return Hash(probe.Backend, probe.Call.State, probe.Call.Kernel, words[..Signature(probe.Call, words)]);
        }

        public BatchKey Create(Probe probe) => Of(probe);
    }
}
