using System.Runtime.InteropServices;
using System.Text;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Native;

/// <summary>
/// The in-process Rust backend: calls cross by pointer into the kernel
/// library that publishes the kernel (libtandem.so or a user's; nothing is copied); short calls run on the caller's thread, long ones are
/// submitted to Rust's compute pool and awaited. Each call runs entirely on
/// the library generation current when it starts, so a hot swap never fails
/// a call. States and streams are owned by
/// <see cref="SafeHandle"/>s, so a call in flight keeps what it uses alive
/// even if its owner drops it meanwhile.
/// </summary>
internal sealed class NativeKernelBackend(NativeLibrarySet libraries, Func<TandemOptions> options) : IInProcessKernelBackend
{
    public BackendKind Kind => BackendKind.Native;

    public void Invoke(KernelCall call)
    {
        using var lease = Resolve(call, out var kernel);
        var timeout = options().CallTimeout;
        var context = NativeKernel.CallContext(timeout, 0);
        try
        {
            kernel.InvokePrepared(lease.Handle, ref call.Args, ref context);
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.DeadlineExceeded && timeout is { } limit)
        {
            throw PastCallTimeout(e, limit);
        }
    }

    public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
    {
        var lease = Resolve(call, out var kernel);
        var current = options();
        try
        {
            await kernel.RunAsync(lease.Handle, call.Args, call.Work < current.SyncWorkThreshold, current.CallTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.DeadlineExceeded && current.CallTimeout is { } limit)
        {
            throw PastCallTimeout(e, limit);
        }
        finally
        {
            lease.Dispose();
        }
    }

    /// <summary>The kernel's DEADLINE_EXCEEDED, naming the option the deadline came from (the kernel only knows it passed).</summary>
    private static TandemException PastCallTimeout(TandemException e, TimeSpan limit) =>
        new(e.Code, $"{e.Message} (Tandem:CallTimeout is {limit}; raise it for longer calls, or split the call)", e.Kernel, e.Backend, e.CorrelationId, e);

    public unsafe IKernelState CreateState(string kind, KernelCall tensors)
    {
        var kindBytes = Encoding.UTF8.GetBytes(kind);
        ref var args = ref tensors.Args;
        // Only a copy of the creation tensors lets the state move to a new library.
        var recipe = options().NativeHotSwap ? NativeStateRecipe.Capture(kind, ref args) : null;
        var host = libraries.HostForStateKind(kind, tensors.Kernel);
        using var creating = host.EnterStateCreation();
        // No swap can switch while the state is being created: it is built in the current generation.
        var generation = host.Generation;
        NativeStateHandle handle;
        fixed (NativeTensor* t = &args.Inputs[0])
        {
            handle = NativeStateRecipe.CreateHandle(generation, kindBytes, t, args.InputCount, tensors.Kernel);
        }

        return Track(host, generation, handle, recipe);
    }

    /// <summary>
    /// Stores a state in the repository at <paramref name="root"/> and keeps
    /// the one built from the tensors (checked by the library before anything
    /// is written). A hot swap rebuilds it from the stored file, so it keeps
    /// no managed copy.
    /// </summary>
    public unsafe IKernelState StoreState(string root, string kind, string name, long version, KernelCall tensors, out Tandem.Contracts.V1.StateManifest manifest)
    {
        ref var args = ref tensors.Args;
        var host = libraries.HostForStateKind(kind, tensors.Kernel);
        using var creating = host.EnterStateCreation();
        var generation = host.Generation;
        NativeStateHandle handle;
        fixed (NativeTensor* t = &args.Inputs[0])
        {
            handle = NativeRepository.Store(generation, root, kind, name, version, t, args.InputCount, keep: true, tensors.Kernel, out manifest)!;
        }

        return Track(host, generation, handle, NativeStateRecipe.Stored(root, name, version));
    }

    /// <summary>Loads a stored state memory-mapped (zero-copy where its kind allows) in the library that declares <paramref name="kind"/>.</summary>
    public IKernelState LoadState(string root, string kind, string name, long version, string? kernel, out Tandem.Contracts.V1.StateManifest manifest)
    {
        var host = libraries.HostForStateKind(kind, kernel);
        using var creating = host.EnterStateCreation();
        var generation = host.Generation;
        var handle = NativeRepository.Load(generation, root, name, version, kernel, out manifest);
        // Reloaded by its exact version: "newest" could be another state by a swap's time.
        return Track(host, generation, handle, NativeStateRecipe.Stored(root, name, (long)manifest.Version));
    }

    /// <summary>The current generation of the library that declares <paramref name="kind"/> (the primary one for null): it stores and reads repository files (any library reads any file).</summary>
    public NativeGeneration RepositoryGeneration(string? kind) =>
        (kind is null ? libraries.Primary : libraries.HostForStateKind(kind, null)).Generation;

    private static unsafe NativeState Track(NativeLibraryHost host, NativeGeneration generation, NativeStateHandle handle, NativeStateRecipe? recipe)
    {
        var state = new NativeState(host, recipe, (long)generation.Runtime.Binding.tandem_state_size_bytes(handle.DangerousGetHandle()));
        state.Attach(generation, handle);
        host.Track(state);
        return state;
    }

    public unsafe ISynchronousKernelStream OpenStream(string kernel)
    {
        // The stream holds its generation until it is freed: it finishes on the library that started it.
        var generation = Host(kernel).Hold();
        try
        {
            var library = generation.Runtime.Binding;
            ulong id;
            NativeErrors.ThrowIfError(library, library.tandem_stream_open(Kernel(generation.Runtime, kernel).Handle, &id), kernel);
            return new NativeStream(new NativeStreamHandle(generation, id), kernel);
        }
        catch
        {
            generation.Release();
            throw;
        }
    }

    /// <summary>
    /// The kernel and state handle of one library for this call. The current
    /// generation is read once; a state handle that a swap has just retired
    /// sends the call to the generation that replaced it, so kernel and state
    /// always come from the same library. Stateless calls need nothing more:
    /// libraries are never unloaded.
    /// </summary>
    private StateLease Resolve(KernelCall call, out NativeKernel kernel)
    {
        if (call.State is null)
        {
            kernel = libraries.Kernel(call.Descriptor, out var refusal) ?? throw refusal!;
            return default;
        }

        var host = Host(call.Kernel);
        var generation = host.Generation;
        var state = (NativeState)call.State;
        while (true)
        {
            if (StateLease.TryTake(state.HandleFor(generation), out var lease))
            {
                kernel = Kernel(generation.Runtime, call.Kernel);
                return lease;
            }

            var next = host.Generation;
            if (state.IsDropped || next == generation)
            {
                throw new TandemException(TandemStatusCode.NotFound, "the state (collection) was dropped before the call started", backend: BackendKind.Native);
            }

            generation = next;
        }
    }

    private NativeLibraryHost Host(string kernel) => libraries.HostFor(kernel, out var refusal) ?? throw refusal!;

    private static NativeKernel Kernel(NativeRuntime runtime, string name) => runtime.Kernel(name, out var refusal) ?? throw refusal!;

    /// <summary>A reference on a native state's handle for the length of one call.</summary>
    private readonly struct StateLease : IDisposable
    {
        private readonly NativeStateHandle? _handle;

        private StateLease(NativeStateHandle handle) => _handle = handle;

        public nint Handle => _handle?.DangerousGetHandle() ?? 0;

        /// <summary>Takes a reference on <paramref name="handle"/> unless it is null or already disposed.</summary>
        public static bool TryTake(NativeStateHandle? handle, out StateLease lease)
        {
            lease = default;
            if (handle is null)
            {
                return false;
            }

            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
            }
            catch (ObjectDisposedException)
            {
                return false;
            }

            lease = added ? new StateLease(handle) : default;
            return added;
        }

        public void Dispose() => _handle?.DangerousRelease();
    }

    private sealed class NativeStream(NativeStreamHandle handle, string kernel) : ISynchronousKernelStream
    {
        public unsafe void Append(ReadOnlySpan<byte> data)
        {
            using var lease = new HandleLease(handle);
            fixed (byte* d = data)
            {
                NativeErrors.ThrowIfError(handle.Library, handle.Library.tandem_stream_update(handle.Id, d, (nuint)data.Length), kernel);
            }
        }

        public unsafe void Finalize(Span<byte> output)
        {
            using var lease = new HandleLease(handle);
            fixed (byte* o = output)
            {
                NativeErrors.ThrowIfError(handle.Library, handle.Library.tandem_stream_finalize(handle.Id, o, (nuint)output.Length), kernel);
            }
        }

        public void Dispose() => handle.Dispose();
    }

    /// <summary>Keeps a handle from being released while a call uses it.</summary>
    private readonly ref struct HandleLease
    {
        private readonly SafeHandle _handle;
        private readonly bool _added;

        public HandleLease(SafeHandle handle)
        {
            _handle = handle;
            handle.DangerousAddRef(ref _added);
        }

        public void Dispose()
        {
            if (_added)
            {
                _handle.DangerousRelease();
            }
        }
    }
}
