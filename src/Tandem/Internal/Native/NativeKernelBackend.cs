using System.Runtime.InteropServices;
using System.Text;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Native;

/// <summary>
/// The in-process Rust backend: calls cross by pointer into libtandem.so
/// (nothing is copied); short calls run on the caller's thread, long ones are
/// submitted to Rust's compute pool and awaited. Each call leases the library
/// generation current when it starts and runs entirely on it, so a hot swap
/// never fails a call. States and streams are owned by
/// <see cref="SafeHandle"/>s, so a call in flight keeps what it uses alive
/// even if its owner drops it meanwhile.
/// </summary>
internal sealed class NativeKernelBackend(NativeLibraryHost host, Func<TandemOptions> options) : IKernelBackend
{
    public BackendKind Kind => BackendKind.Native;

    public void Invoke(KernelCall call)
    {
        using var generation = host.Acquire();
        var kernel = Kernel(generation.Runtime, call.Kernel);
        using var lease = new StateLease(call.State, generation.Generation);
        var context = NativeKernel.CallContext(options().CallTimeout, 0);
        kernel.Invoke(lease.Handle, ref call.Args, ref context);
    }

    public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
    {
        var generation = host.Acquire();
        try
        {
            var kernel = Kernel(generation.Runtime, call.Kernel);
            var current = options();
            var lease = new StateLease(call.State, generation.Generation);
            try
            {
                await kernel.RunAsync(lease.Handle, call.Args, call.Work < current.SyncWorkThreshold, current.CallTimeout, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                lease.Dispose();
            }
        }
        finally
        {
            generation.Dispose();
        }
    }

    public unsafe IKernelState CreateState(string kind, KernelCall tensors)
    {
        var kindBytes = Encoding.UTF8.GetBytes(kind);
        ref var args = ref tensors.Args;
        // Only a copy of the creation tensors lets the state move to a new library.
        var recipe = options().NativeHotSwap ? NativeStateRecipe.Capture(kind, ref args) : null;
        using var creating = host.EnterStateCreation();
        using var generation = host.Acquire();
        NativeStateHandle handle;
        fixed (NativeTensor* t = &args.Inputs[0])
        {
            handle = NativeStateRecipe.CreateHandle(generation.Runtime.Binding, kindBytes, t, args.InputCount, tensors.Kernel);
        }

        var state = new NativeState(host, recipe, (long)generation.Runtime.Binding.tandem_state_size_bytes(handle.DangerousGetHandle()));
        state.Attach(generation.Generation, handle);
        host.Track(state);
        return state;
    }

    public unsafe IKernelStream OpenStream(string kernel)
    {
        // The stream keeps this lease until it is freed: it finishes on the library that started it.
        var generation = host.Acquire();
        try
        {
            var library = generation.Runtime.Binding;
            ulong id;
            NativeErrors.ThrowIfError(library, library.tandem_stream_open(Kernel(generation.Runtime, kernel).Handle, &id), kernel);
            return new NativeStream(new NativeStreamHandle(generation.Generation, id), kernel);
        }
        catch
        {
            generation.Dispose();
            throw;
        }
    }

    private static NativeKernel Kernel(NativeRuntime runtime, string name) => runtime.Kernel(name, out var refusal) ?? throw refusal!;

    /// <summary>A reference on a native state's handle in one generation for the length of one call.</summary>
    private readonly struct StateLease : IDisposable
    {
        private readonly NativeStateHandle? _handle;
        private readonly bool _added;

        public StateLease(IKernelState? state, NativeGeneration generation)
        {
            if (state is null)
            {
                return;
            }

            _handle = ((NativeState)state).HandleFor(generation);
            try
            {
                _handle?.DangerousAddRef(ref _added);
            }
            catch (ObjectDisposedException)
            {
                // Dropped meanwhile: reported below.
            }

            if (!_added)
            {
                throw new TandemException(TandemStatusCode.NotFound, "the state (collection) was dropped before the call started", backend: BackendKind.Native);
            }
        }

        public nint Handle => _handle?.DangerousGetHandle() ?? 0;

        public void Dispose()
        {
            if (_added)
            {
                _handle!.DangerousRelease();
            }
        }
    }

    private sealed class NativeStream(NativeStreamHandle handle, string kernel) : IKernelStream
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
