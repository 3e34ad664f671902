using System.Text;
using Tandem.Contracts.V1;

namespace Tandem.Internal.Native;

/// <summary>
/// The state repository through one native library's C ABI (1.3): store,
/// load, list, remove, and stored tensors read in place. The repository is a
/// directory every library and process shares, so any library with the
/// exports reads what another wrote.
/// </summary>
internal static unsafe class NativeRepository
{
    /// <summary>Refuses a library older than ABI 1.3.</summary>
    public static void Require(NativeLibraryBinding library, string? kernel)
    {
        if (!library.HasStateRepository)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, $"kernel library '{library.Path}' predates the state repository (ABI 1.3); rebuild it against the current tandem-sdk", kernel, BackendKind.Native);
        }
    }

    /// <summary>
    /// Checks the tensors against the kind, builds the state and stores it
    /// as (<paramref name="name"/>, <paramref name="version"/>); returns the
    /// state's handle, or none when <paramref name="keep"/> is false (the
    /// state is built only to check the tensors, then dropped).
    /// </summary>
    public static NativeStateHandle? Store(NativeGeneration generation, string root, string kind, string name, long version, NativeTensor* tensors, int count, bool keep, string? kernel, out StateManifest manifest)
    {
        var library = generation.Runtime.Binding;
        Require(library, kernel);
        if (keep && !generation.TryHold())
        {
            throw new InvalidOperationException("a state was stored in a generation that already drained");
        }

        var (rootBytes, kindBytes, nameBytes) = (Encoding.UTF8.GetBytes(root), Encoding.UTF8.GetBytes(kind), Encoding.UTF8.GetBytes(name));
        nint state = 0;
        NativeBuffer buffer = default;
        nint error;
        fixed (byte* r = rootBytes, k = kindBytes, n = nameBytes)
        {
            error = library.tandem_state_store(r, (nuint)rootBytes.Length, k, (nuint)kindBytes.Length, n, (nuint)nameBytes.Length, (ulong)version, tensors, (nuint)count, keep ? &state : null, &buffer);
        }

        if (NativeErrors.Take(library, error, kernel) is { } failure)
        {
            if (keep)
            {
                generation.Release();
            }

            throw failure;
        }

        manifest = TakeManifest(library, ref buffer);
        return keep ? new NativeStateHandle(library, state, generation) : null;
    }

    /// <summary>Loads (<paramref name="name"/>, <paramref name="version"/>; 0 = newest) memory-mapped and verified.</summary>
    public static NativeStateHandle Load(NativeGeneration generation, string root, string name, long version, string? kernel, out StateManifest manifest)
    {
        var library = generation.Runtime.Binding;
        Require(library, kernel);
        if (!generation.TryHold())
        {
            throw new InvalidOperationException("a state was loaded in a generation that already drained");
        }

        var (rootBytes, nameBytes) = (Encoding.UTF8.GetBytes(root), Encoding.UTF8.GetBytes(name));
        nint state;
        NativeBuffer buffer = default;
        nint error;
        fixed (byte* r = rootBytes, n = nameBytes)
        {
            error = library.tandem_state_load(r, (nuint)rootBytes.Length, n, (nuint)nameBytes.Length, (ulong)version, &state, &buffer);
        }

        if (NativeErrors.Take(library, error, kernel) is { } failure)
        {
            generation.Release();
            throw failure;
        }

        manifest = TakeManifest(library, ref buffer);
        return new NativeStateHandle(library, state, generation);
    }

    /// <summary>Every state the repository holds, manifests read from file headers (unverified).</summary>
    public static StateList List(NativeLibraryBinding library, string root)
    {
        Require(library, null);
        var rootBytes = Encoding.UTF8.GetBytes(root);
        NativeBuffer buffer;
        fixed (byte* r = rootBytes)
        {
            NativeErrors.ThrowIfError(library, library.tandem_repository_list(r, (nuint)rootBytes.Length, &buffer), null);
        }

        try
        {
            return StateList.Parser.ParseFrom(new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)));
        }
        finally
        {
            library.tandem_buffer_free(&buffer);
        }
    }

    /// <summary>Removes one version, or every version when <paramref name="version"/> is 0 (NOT_FOUND when there is none).</summary>
    public static void Remove(NativeLibraryBinding library, string root, string name, long version)
    {
        Require(library, null);
        var (rootBytes, nameBytes) = (Encoding.UTF8.GetBytes(root), Encoding.UTF8.GetBytes(name));
        fixed (byte* r = rootBytes, n = nameBytes)
        {
            NativeErrors.ThrowIfError(library, library.tandem_repository_remove(r, (nuint)rootBytes.Length, n, (nuint)nameBytes.Length, (ulong)version), null);
        }
    }

    /// <summary>Maps and verifies a stored state for reading its tensors in place.</summary>
    public static NativeStoredState Open(NativeLibraryBinding library, string root, string name, long version, string? kernel)
    {
        Require(library, kernel);
        var (rootBytes, nameBytes) = (Encoding.UTF8.GetBytes(root), Encoding.UTF8.GetBytes(name));
        nint stored;
        NativeBuffer buffer = default;
        fixed (byte* r = rootBytes, n = nameBytes)
        {
            NativeErrors.ThrowIfError(library, library.tandem_stored_open(r, (nuint)rootBytes.Length, n, (nuint)nameBytes.Length, (ulong)version, &stored, &buffer), kernel);
        }

        var handle = new NativeStoredHandle(library, stored);
        try
        {
            var manifest = TakeManifest(library, ref buffer);
            var views = new NativeTensor[manifest.Tensors.Count];
            nuint count;
            fixed (NativeTensor* v = views)
            {
                NativeErrors.ThrowIfError(library, library.tandem_stored_tensors(stored, v, (nuint)views.Length, &count), kernel);
            }

            return new NativeStoredState(handle, manifest, views);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static StateManifest TakeManifest(NativeLibraryBinding library, ref NativeBuffer buffer)
    {
        try
        {
            return StateManifest.Parser.ParseFrom(new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)));
        }
        finally
        {
            fixed (NativeBuffer* b = &buffer)
            {
                library.tandem_buffer_free(b);
            }
        }
    }
}

/// <summary>A verified stored state, mapped: its manifest and its tensors' views (valid until disposed).</summary>
internal sealed class NativeStoredState(NativeStoredHandle handle, StateManifest manifest, NativeTensor[] views) : IDisposable
{
    public StateManifest Manifest { get; } = manifest;

    /// <summary>The tensors in the manifest's order.</summary>
    public IReadOnlyList<NativeTensor> Views { get; } = views;

    public void Dispose() => handle.Dispose();
}

/// <summary>Owns a tandem_stored_t (tandem_stored_free of its library on release).</summary>
internal sealed class NativeStoredHandle : System.Runtime.InteropServices.SafeHandle
{
    private readonly NativeLibraryBinding _library;

    public NativeStoredHandle(NativeLibraryBinding library, nint handle)
        : base(0, ownsHandle: true)
    {
        _library = library;
        SetHandle(handle);
    }

    public override bool IsInvalid => handle == 0;

    protected override unsafe bool ReleaseHandle()
    {
        _library.tandem_stored_free(handle);
        return true;
    }
}
