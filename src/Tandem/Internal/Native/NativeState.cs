using System.Text;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Native;

/// <summary>
/// A native state (a vector collection) as one handle per library
/// generation: during a hot swap a call finds the handle built in the
/// library it runs on. Right after the switch the old generation's handle is
/// disposed; a call already using it keeps it alive through the SafeHandle's
/// reference count, and a call that had not taken it yet moves to the new
/// generation.
/// </summary>
internal sealed class NativeState(NativeLibraryHost host, NativeStateRecipe? recipe, long sizeBytes) : IKernelState
{
    private readonly Lock _gate = new();
    private (NativeGeneration Generation, NativeStateHandle Handle)[] _handles = [];
    private bool _disposed;

    public BackendKind Backend => BackendKind.Native;

    public long SizeBytes { get; } = sizeBytes;

    /// <summary>What rebuilds the state in another library; null unless hot swap was enabled when it was created.</summary>
    public NativeStateRecipe? Recipe { get; } = recipe;

    /// <summary>Whether the owner dropped the state.</summary>
    public bool IsDropped => Volatile.Read(ref _disposed);

    /// <summary>The handle built in <paramref name="generation"/>, or null once the state is dropped or the generation replaced.</summary>
    public NativeStateHandle? HandleFor(NativeGeneration generation)
    {
        // Copy-on-write array of one or two entries: no lock on the call path.
        foreach (var (owner, handle) in Volatile.Read(ref _handles))
        {
            if (owner == generation)
            {
                return handle;
            }
        }

        return null;
    }

    /// <summary>Adds the handle built in <paramref name="generation"/>; frees it instead when the state was dropped meanwhile.</summary>
    public void Attach(NativeGeneration generation, NativeStateHandle handle)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                Volatile.Write(ref _handles, [.. _handles, (generation, handle)]);
                return;
            }
        }

        handle.Dispose();
    }

    /// <summary>Disposes the handle of a generation that was switched away from.</summary>
    public void Detach(NativeGeneration generation)
    {
        NativeStateHandle? detached = null;
        lock (_gate)
        {
            var kept = new List<(NativeGeneration, NativeStateHandle)>(_handles.Length);
            foreach (var entry in _handles)
            {
                if (entry.Generation == generation)
                {
                    detached = entry.Handle;
                }
                else
                {
                    kept.Add(entry);
                }
            }

            Volatile.Write(ref _handles, [.. kept]);
        }

        detached?.Dispose();
    }

    public void Dispose()
    {
        (NativeGeneration, NativeStateHandle)[] handles;
        lock (_gate)
        {
            Volatile.Write(ref _disposed, true);
            handles = _handles;
            Volatile.Write(ref _handles, []);
        }

        host.Forget(this);
        foreach (var (_, handle) in handles)
        {
            handle.Dispose();
        }
    }
}

/// <summary>
/// How to build a native state again in a newly loaded library: for a state
/// loaded from the state repository, its (root, name, version), which costs
/// nothing to keep; for a state created from tensors, a managed copy of them,
/// kept only when hot swap is enabled (it doubles the state's memory).
/// </summary>
internal sealed unsafe class NativeStateRecipe
{
    private readonly byte[] _kind;
    private readonly NativeTensor[] _headers;
    private readonly byte[][] _data;
    private readonly (string Root, string Name, long Version)? _stored;

    private NativeStateRecipe(byte[] kind, NativeTensor[] headers, byte[][] data, (string, string, long)? stored = null)
    {
        _kind = kind;
        _headers = headers;
        _data = data;
        _stored = stored;
    }

    /// <summary>A state that reloads from the repository (the file is immutable, so it is the same state).</summary>
    public static NativeStateRecipe Stored(string root, string name, long version) => new([], [], [], (root, name, version));

    /// <summary>Copies the state's creation tensors (an absent optional tensor stays absent).</summary>
    public static NativeStateRecipe Capture(string kind, ref NativeCallArgs args)
    {
        var headers = new NativeTensor[args.InputCount];
        var data = new byte[args.InputCount][];
        for (var i = 0; i < args.InputCount; i++)
        {
            headers[i] = args.Inputs[i];
            data[i] = headers[i].Data is null ? [] : new ReadOnlySpan<byte>(headers[i].Data, checked((int)headers[i].ByteLength)).ToArray();
        }

        return new NativeStateRecipe(Encoding.UTF8.GetBytes(kind), headers, data);
    }

    /// <summary>Builds the state again in <paramref name="generation"/>'s library.</summary>
    public NativeStateHandle Create(NativeGeneration generation)
    {
        if (_stored is var (root, name, version))
        {
            return NativeRepository.Load(generation, root, name, version, null, out _);
        }

        var count = _headers.Length;
        var tensors = stackalloc NativeTensor[NativeCallArgs.Capacity];
        var pins = new System.Buffers.MemoryHandle[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                pins[i] = _data[i].AsMemory().Pin();
                tensors[i] = _headers[i];
                tensors[i].Data = _headers[i].Data is null ? null : pins[i].Pointer;
            }

            return CreateHandle(generation, _kind, tensors, count, null);
        }
        finally
        {
            foreach (var pin in pins)
            {
                pin.Dispose();
            }
        }
    }

    /// <summary>
    /// tandem_state_create in <paramref name="generation"/>'s library, owned by
    /// a SafeHandle that holds the generation until the state is freed.
    /// </summary>
    public static NativeStateHandle CreateHandle(NativeGeneration generation, byte[] kind, NativeTensor* tensors, int count, string? kernel)
    {
        var library = generation.Runtime.Binding;
        if (!generation.TryHold())
        {
            throw new InvalidOperationException("a state was built in a generation that already drained");
        }

        nint state;
        nint error;
        fixed (byte* k = kind)
        {
            error = library.tandem_state_create(k, (nuint)kind.Length, tensors, (nuint)count, &state);
        }

        if (NativeErrors.Take(library, error, kernel) is { } failure)
        {
            generation.Release();
            throw failure;
        }

        return new NativeStateHandle(library, state, generation);
    }
}
