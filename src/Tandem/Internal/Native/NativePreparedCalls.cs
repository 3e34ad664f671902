using System.Runtime.CompilerServices;

namespace Tandem.Internal.Native;

/// <summary>
/// The prepared calls (ABI 1.2, <c>tandem_kernel_prepare</c>) of one kernel
/// of one library: a call whose dtypes, shapes and parameter values were
/// validated once is repeated with only its buffers' pointers and lengths
/// (<c>tandem_prepared_invoke</c>), skipping the descriptor walk. For a
/// batchable kernel the row count (axis 0) may differ between repeats, so
/// dynamic batches of one row shape share one prepared call.
/// </summary>
/// <remarks>
/// A call is prepared the second time its shapes and parameters are seen
/// (the first runs unprepared), so calls that never repeat — a hash of a new
/// length each time — pay nothing for preparing. The table holds at most
/// <see cref="Capacity"/> calls, replaced round-robin when a new shape or
/// parameter set repeats. A replaced call is freed by its
/// finalizer, once no call is using it any more (a call keeps its entry
/// reachable until the native call has returned), so a lookup takes no lock
/// and no reference count. Libraries are never unloaded, so the free
/// function is valid whenever a finalizer runs.
/// </remarks>
internal sealed unsafe class NativePreparedCalls(NativeLibraryBinding library, string kernel, nint handle)
{
    /// <summary>Prepared calls kept per kernel and library.</summary>
    public const int Capacity = 8;

    /// <summary>Fingerprints of recent call shapes seen once.</summary>
    private const int SeenCapacity = 16;

    private readonly Entry?[] _entries = new Entry?[Capacity];
    private readonly ulong[] _seen = new ulong[SeenCapacity];
    private int _next = -1;
    private int _nextSeen = -1;

    /// <summary>Calls prepared so far (replacements included); for tests.</summary>
    public int Prepared => _next + 1;

    /// <summary>
    /// Runs the call through its prepared call, preparing it when its shapes
    /// and parameters repeat (which validates it as an unprepared call would,
    /// with the same errors). False, without running anything, the first
    /// time a shape is seen and when the library predates prepared calls: the
    /// caller invokes it unprepared.
    /// </summary>
    /// <remarks>
    /// The call keeps the GC transition: <c>[SuppressGCTransition]</c> would
    /// save its cost (BoundaryBenchmarks' <c>SyncPreparedRawSuppressGCTransition</c>)
    /// but is legal only for a call that never blocks and never waits on
    /// .NET, and a kernel may fan out to the Rust compute pool, whose threads
    /// run completion callbacks into .NET (a pending GC would wait for this
    /// thread while this thread waits for a pool thread that waits for the
    /// GC), take a lock or write a log line; neither the descriptor nor the
    /// work estimate tells which kernels never do.
    /// </remarks>
    [SkipLocalsInit]
    public bool TryInvoke(nint state, ref NativeCallArgs args, ref NativeCallContext context)
    {
        if (!library.HasPreparedCalls)
        {
            return false;
        }

        var entry = Find(ref args);
        if (entry is null)
        {
            if (FirstSight(ref args))
            {
                return false;
            }

            entry = Prepare(ref args);
        }

        var inputs = stackalloc NativeSlice[NativeCallArgs.Capacity];
        var outputs = stackalloc NativeSlice[NativeCallArgs.Capacity];
        for (var i = 0; i < args.InputCount; i++)
        {
            inputs[i] = new NativeSlice { Data = args.Inputs[i].Data, ByteLength = args.Inputs[i].ByteLength };
        }

        for (var i = 0; i < args.OutputCount; i++)
        {
            outputs[i] = new NativeSlice { Data = args.Outputs[i].Data, ByteLength = args.Outputs[i].ByteLength };
        }

        nint error;
        fixed (NativeCallContext* c = &context)
        {
            error = library.tandem_prepared_invoke(entry.Handle, state, entry.VariesRows ? Rows(ref args) : ulong.MaxValue, inputs, (nuint)args.InputCount, outputs, (nuint)args.OutputCount, c);
        }

        // The entry (and so its native call) lives until the call has returned.
        GC.KeepAlive(entry);
        NativeErrors.ThrowIfError(library, error, kernel);
        return true;
    }

    /// <summary>Axis 0 of the first tensor: every tensor of a batchable kernel shares it (the library checks the lengths).</summary>
    private static ulong Rows(ref NativeCallArgs args) =>
        (ulong)(args.InputCount > 0 ? args.Inputs[0].Shape[0] : args.Outputs[0].Shape[0]);

    private Entry? Find(ref NativeCallArgs args)
    {
        foreach (var entry in _entries)
        {
            if (entry is not null && entry.Matches(ref args))
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>Records the call's fingerprint; true when it was not among the recent ones.</summary>
    private bool FirstSight(ref NativeCallArgs args)
    {
        var fingerprint = Fingerprint(ref args);
        foreach (var seen in _seen)
        {
            if (seen == fingerprint)
            {
                return false;
            }
        }

        _seen[(int)((uint)Interlocked.Increment(ref _nextSeen) % SeenCapacity)] = fingerprint;
        return true;
    }

    /// <summary>A hash of what a prepared call fixes (row counts included: only repeats of one shape count as repeats).</summary>
    private static ulong Fingerprint(ref NativeCallArgs args)
    {
        var hash = new HashCode();
        hash.Add(args.InputCount);
        hash.Add(args.OutputCount);
        hash.Add(args.ParamCount);
        for (var i = 0; i < args.InputCount; i++)
        {
            Add(ref hash, ref args.Inputs[i]);
        }

        for (var i = 0; i < args.OutputCount; i++)
        {
            Add(ref hash, ref args.Outputs[i]);
        }

        for (var i = 0; i < args.ParamCount; i++)
        {
            hash.Add(args.Params[i].Kind);
            hash.Add(args.Params[i].IntValue);
            hash.Add(args.Params[i].FloatValue);
        }

        // Never 0, the value of an empty slot.
        return ((ulong)(uint)hash.ToHashCode() << 1) | 1;

        static void Add(ref HashCode hash, ref NativeTensor tensor)
        {
            hash.Add(tensor.DType);
            hash.Add(tensor.Rank);
            hash.Add(tensor.ByteLength);
            for (var axis = 0; axis < NativeCallArgs.MaxRank; axis++)
            {
                hash.Add(tensor.Shape[axis]);
            }
        }
    }

    private Entry Prepare(ref NativeCallArgs args)
    {
        nint prepared = 0;
        nint error;
        fixed (NativeTensor* i = &args.Inputs[0])
        fixed (NativeParam* p = &args.Params[0])
        fixed (NativeTensor* o = &args.Outputs[0])
        {
            error = library.tandem_kernel_prepare(handle, i, (nuint)args.InputCount, p, (nuint)args.ParamCount, o, (nuint)args.OutputCount, &prepared);
        }

        NativeErrors.ThrowIfError(library, error, kernel);
        var entry = new Entry(library, prepared, library.tandem_prepared_varies_rows(prepared) != 0, ref args);
        var slot = (int)((uint)Interlocked.Increment(ref _next) % Capacity);
        Volatile.Write(ref _entries[slot], entry);
        return entry;
    }

    /// <summary>One prepared call and the headers it fixed (data pointers dropped; axis 0 too when rows vary).</summary>
    private sealed class Entry
    {
        private readonly NativeLibraryBinding _library;
        private NativeCallArgs _key;

        public Entry(NativeLibraryBinding library, nint handle, bool variesRows, ref NativeCallArgs args)
        {
            _library = library;
            Handle = handle;
            VariesRows = variesRows;
            _key = args;
            for (var i = 0; i < _key.InputCount; i++)
            {
                _key.Inputs[i].Data = null;
            }

            for (var i = 0; i < _key.OutputCount; i++)
            {
                _key.Outputs[i].Data = null;
            }
        }

        ~Entry() => _library.tandem_prepared_free(Handle);

        public nint Handle { get; }

        public bool VariesRows { get; }

        public bool Matches(ref NativeCallArgs args)
        {
            if (args.InputCount != _key.InputCount || args.OutputCount != _key.OutputCount || args.ParamCount != _key.ParamCount)
            {
                return false;
            }

            for (var i = 0; i < args.InputCount; i++)
            {
                if (!Same(ref _key.Inputs[i], ref args.Inputs[i]))
                {
                    return false;
                }
            }

            for (var i = 0; i < args.OutputCount; i++)
            {
                if (!Same(ref _key.Outputs[i], ref args.Outputs[i]))
                {
                    return false;
                }
            }

            for (var i = 0; i < args.ParamCount; i++)
            {
                ref var a = ref _key.Params[i];
                ref var b = ref args.Params[i];
                if (a.Kind != b.Kind || a.IntValue != b.IntValue || BitConverter.DoubleToInt64Bits(a.FloatValue) != BitConverter.DoubleToInt64Bits(b.FloatValue))
                {
                    return false;
                }
            }

            return true;
        }

        private bool Same(ref NativeTensor key, ref NativeTensor tensor)
        {
            if (key.DType != tensor.DType || key.Rank != tensor.Rank)
            {
                return false;
            }

            // With rows varying, axis 0 and so the length may differ: the library checks them.
            var first = VariesRows ? 1 : 0;
            if (!VariesRows && key.ByteLength != tensor.ByteLength)
            {
                return false;
            }

            for (var axis = first; axis < Math.Min((int)key.Rank, NativeCallArgs.MaxRank); axis++)
            {
                if (key.Shape[axis] != tensor.Shape[axis])
                {
                    return false;
                }
            }

            return true;
        }
    }
}
