using Tandem.Contracts.V1;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;
using Tandem.Kernels;

namespace Tandem.Internal.States;

/// <summary>A state stored in or loaded from the repository, on the backend that serves it.</summary>
internal sealed record StoredKernelState(IKernelBackend Backend, IKernelState State, StateManifest Manifest);

/// <summary>
/// The state repository: files are written and read by the native library
/// that declares the kind (the one format has one implementation, in the
/// SDK). On the native backend a state loads memory-mapped from its file;
/// remote workers with a repository load it from theirs by (name, version),
/// so the client keeps no copy; a managed backend (or workers without a
/// repository) builds its state from the file's tensors, read in place from
/// the mapping.
/// </summary>
internal sealed class StateRepositoryService(KernelBackends backends) : IStateRepository
{
    public bool IsConfigured => !string.IsNullOrEmpty(backends.CurrentOptions.StateRepository);

    public async ValueTask<KernelState> StoreAsync(string kind, string name, long version, IReadOnlyList<KernelTensor> tensors, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(tensors);
        var (contract, reader) = backends.Catalog.StateKindAndReader(kind);
        using var call = KernelInvoker.StateCall(reader, contract, tensors, out var symbols);
        var stored = await StoreAsync(kind, name, version, call, cancellationToken).ConfigureAwait(false);
        return new KernelState(contract, stored.Backend, stored.State, symbols, Release);
    }

    public async ValueTask<KernelState> LoadAsync(string name, long version = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        // Resolved once: the kind, and "newest" pinned to one version for the load.
        var listed = ManifestOf(name, version);
        var (contract, _) = backends.Catalog.StateKindAndReader(listed.Kind);
        var loaded = await LoadAsync(listed.Kind, name, (long)listed.Version, cancellationToken, listed).ConfigureAwait(false);
        return new KernelState(contract, loaded.Backend, loaded.State, Symbols(contract, loaded.Manifest), Release);
    }

    public IReadOnlyList<StoredStateInfo> List()
    {
        var root = Root();
        return [.. NativeRepository.List(Library(null), root).States.Select(Info)];
    }

    public void Remove(string name, long version = 0)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        NativeRepository.Remove(Library(null), Root(), name, version);
    }

    /// <summary>Stores a state built from <paramref name="call"/>'s inputs (checked against the kind already) and returns it on the kind's serving backend.</summary>
    public async ValueTask<StoredKernelState> StoreAsync(string kind, string name, long version, KernelCall call, CancellationToken cancellationToken)
    {
        var root = Root();
        var backend = backends.For(call.Kernel);
        if (backend is NativeKernelBackend native)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var state = native.StoreState(root, kind, name, version, call, out var manifest);
            return new StoredKernelState(backend, state, manifest);
        }

        // Another backend holds the state: the native library checks and
        // writes the file, then the backend builds its own copy — workers
        // with a repository by loading the file, others from the caller's
        // tensors. Storing first means a state the backend cannot build is
        // still durable, and the caller can load it when that backend is back.
        var written = StoreOnly(kind, name, version, call);
        if (backend is IStoredStateBackend remote && await remote.CanLoadStoredAsync(call.Kernel, cancellationToken).ConfigureAwait(false))
        {
            return new StoredKernelState(backend, await LoadRemoteAsync(remote, kind, call.Descriptor, written, cancellationToken).ConfigureAwait(false), written);
        }

        var built = await backend.CreateStateAsync(kind, call, cancellationToken).ConfigureAwait(false);
        return new StoredKernelState(backend, built, written);
    }

    /// <summary>
    /// Loads (<paramref name="name"/>, <paramref name="version"/>) of <paramref name="kind"/> on the kind's serving backend;
    /// <paramref name="listed"/> is its manifest when the caller has already read it from the listing.
    /// </summary>
    public async ValueTask<StoredKernelState> LoadAsync(string kind, string name, long version, CancellationToken cancellationToken, StateManifest? listed = null)
    {
        var root = Root();
        var (contract, reader) = backends.Catalog.StateKindAndReader(kind);
        var backend = backends.For(reader.Name);
        cancellationToken.ThrowIfCancellationRequested();
        if (backend is NativeKernelBackend native)
        {
            var state = native.LoadState(root, kind, name, version, reader.Name, out var manifest);
            return new StoredKernelState(backend, state, manifest);
        }

        if (backend is IStoredStateBackend remote && await remote.CanLoadStoredAsync(reader.Name, cancellationToken).ConfigureAwait(false))
        {
            // Every worker must load the same version: resolve "newest" here.
            var manifest = listed ?? ManifestOf(name, version);
            CheckKind(manifest, kind, reader.Name);
            return new StoredKernelState(backend, await LoadRemoteAsync(remote, kind, reader.Descriptor, manifest, cancellationToken).ConfigureAwait(false), manifest);
        }

        using var stored = NativeRepository.Open(Library(kind), root, name, version, reader.Name);
        CheckKind(stored.Manifest, kind, reader.Name);
        using var call = FileCall(stored, contract, reader);
        // The backend copies the tensors before the task completes; the mapping goes with `stored`.
        var built = await backend.CreateStateAsync(kind, call, cancellationToken).ConfigureAwait(false);
        return new StoredKernelState(backend, built, stored.Manifest);
    }

    /// <summary>The manifest of a stored state as its file's header gives it (version 0: the newest); NOT_FOUND naming the versions held.</summary>
    public StateManifest ManifestOf(string name, long version)
    {
        var root = Root();
        var listed = NativeRepository.List(Library(null), root).States.Where(m => m.Name == name).ToList();
        var match = version == 0 ? listed.LastOrDefault() : listed.FirstOrDefault(m => (long)m.Version == version);
        if (match is null)
        {
            var held = listed.Count == 0 ? "it has no version of that state" : $"it has version(s) {string.Join(", ", listed.Select(m => m.Version))}";
            throw new TandemException(TandemStatusCode.NotFound, $"state '{name}'{(version == 0 ? "" : $" version {version}")} is not in the repository; {held}");
        }

        if (match.Kind.Length == 0)
        {
            // The header is unreadable: a load reports exactly why (DATA_LOSS).
            using var refused = NativeRepository.Open(Library(null), root, name, (long)match.Version, null);
        }

        return match;
    }

    private ValueTask<IKernelState> LoadRemoteAsync(IStoredStateBackend remote, string kind, KernelDescriptor creator, StateManifest manifest, CancellationToken cancellationToken)
    {
        var (name, version) = (manifest.Name, (long)manifest.Version);
        return remote.LoadStoredAsync(kind, creator, name, version, (long)manifest.DataLength, backend => LoadInProcess(backend, kind, name, version), cancellationToken);
    }

    /// <summary>The stored state built in process on <paramref name="backend"/> (a remote state's fallback): memory-mapped on native, copied from the file's tensors on managed.</summary>
    private IKernelState LoadInProcess(IInProcessKernelBackend backend, string kind, string name, long version)
    {
        var (contract, reader) = backends.Catalog.StateKindAndReader(kind);
        if (backend is NativeKernelBackend native)
        {
            return native.LoadState(Root(), kind, name, version, reader.Name, out _);
        }

        using var stored = NativeRepository.Open(Library(kind), Root(), name, version, reader.Name);
        using var call = FileCall(stored, contract, reader);
        return backend.CreateState(kind, call);
    }

    /// <summary>A state-creation call over the stored file's tensors, in the kind's order (read in place: valid while <paramref name="stored"/> is).</summary>
    private static KernelCall FileCall(NativeStoredState stored, StateKindContract contract, KernelContract reader)
    {
        var call = new KernelCall(reader.Descriptor);
        foreach (var spec in contract.Tensors)
        {
            var index = IndexOf(stored.Manifest, spec.Name);
            _ = index < 0 ? call.Absent() : call.Input(stored.Views[index]);
        }

        return call;
    }

    private static void CheckKind(StateManifest manifest, string kind, string kernel)
    {
        if (manifest.Kind != kind)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, $"state '{manifest.Name}' version {manifest.Version} is of kind '{manifest.Kind}', not '{kind}'", kernel);
        }
    }

    /// <summary>Sizes the stored tensors bind to the kind's symbols ("n", "dim").</summary>
    public static Dictionary<string, long> Symbols(StateKindContract kind, StateManifest manifest)
    {
        var symbols = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var spec in kind.Tensors)
        {
            var index = IndexOf(manifest, spec.Name);
            if (index < 0)
            {
                continue;
            }

            var shape = manifest.Tensors[index].Shape;
            for (var axis = 0; axis < spec.Shape.Count && axis < shape.Count; axis++)
            {
                if (spec.Shape[axis].Symbol is { } symbol)
                {
                    symbols.TryAdd(symbol, checked((long)shape[axis]));
                }
            }
        }

        return symbols;
    }

    public static StoredStateInfo Info(StateManifest m) =>
        new(m.Name, (long)m.Version, m.Kind, (long)m.DataLength, DateTimeOffset.FromUnixTimeMilliseconds(m.CreatedUnixMs));

    private unsafe StateManifest StoreOnly(string kind, string name, long version, KernelCall call)
    {
        var native = backends.NativeBackend;
        var library = native.RepositoryGeneration(kind);
        ref var args = ref call.Args;
        fixed (NativeTensor* t = &args.Inputs[0])
        {
            _ = NativeRepository.Store(library, Root(), kind, name, version, t, args.InputCount, keep: false, call.Kernel, out var manifest);
            return manifest;
        }
    }

    private static int IndexOf(StateManifest manifest, string tensor)
    {
        for (var i = 0; i < manifest.Tensors.Count; i++)
        {
            if (manifest.Tensors[i].Name == tensor)
            {
                return i;
            }
        }

        return -1;
    }

    private NativeLibraryBinding Library(string? kind) => backends.NativeBackend.RepositoryGeneration(kind).Runtime.Binding;

    private string Root() =>
        backends.CurrentOptions.StateRepository is { Length: > 0 } root
            ? root
            : throw new TandemException(TandemStatusCode.FailedPrecondition, "no state repository is configured; set Tandem:StateRepository to a directory (it may be a shared volume)");

    private void Release(IKernelState state)
    {
        backends.Cache.Invalidate(state);
        state.Dispose();
    }
}
