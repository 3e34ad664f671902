using System.Runtime.InteropServices;
using System.Text;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Native;

/// <summary>
/// The in-process Rust backend: calls cross by pointer into libtandem.so
/// (nothing is copied); short calls run on the caller's thread, long ones are
/// submitted to Rust's compute pool and awaited. States and streams are
/// owned by <see cref="SafeHandle"/>s, so a call in flight keeps what it
/// uses alive even if its owner drops it meanwhile.
/// </summary>
internal sealed class NativeKernelBackend(NativeRuntime runtime, Func<TandemOptions> options) : IKernelBackend
{
    public BackendKind Kind => BackendKind.Native;

    public void Invoke(KernelCall call)
    {
        var kernel = Kernel(call.Kernel);
        using var lease = new StateLease(call.State);
        var context = NativeKernel.CallContext(options().CallTimeout, 0);
        kernel.Invoke(lease.Handle, ref call.Args, ref context);
    }

    public async ValueTask InvokeAsync(KernelCall call, CancellationToken cancellationToken)
    {
        var kernel = Kernel(call.Kernel);
        var current = options();
        var lease = new StateLease(call.State);
        try
        {
            await kernel.RunAsync(lease.Handle, call.Args, call.Work < current.SyncWorkThreshold, current.CallTimeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lease.Dispose();
        }
    }

    public unsafe IKernelState CreateState(string kind, KernelCall tensors)
    {
        var kindBytes = Encoding.UTF8.GetBytes(kind);
        nint state;
        nint error;
        ref var args = ref tensors.Args;
        fixed (byte* k = kindBytes)
        fixed (NativeTensor* t = &args.Inputs[0])
        {
            error = NativeMethods.tandem_state_create(k, (nuint)kindBytes.Length, t, (nuint)args.InputCount, &state);
        }

        NativeErrors.ThrowIfError(error, tensors.Kernel);
        return new NativeState(new NativeStateHandle(state), (long)NativeMethods.tandem_state_size_bytes(state));
    }

    public unsafe IKernelStream OpenStream(string kernel)
    {
        ulong id;
        NativeErrors.ThrowIfError(NativeMethods.tandem_stream_open(Kernel(kernel).Handle, &id), kernel);
        return new NativeStream(new NativeStreamHandle(id), kernel);
    }

    private NativeKernel Kernel(string name) => runtime.Kernel(name, out var refusal) ?? throw refusal!;

    /// <summary>A reference on a native state for the length of one call.</summary>
    private readonly struct StateLease : IDisposable
    {
        private readonly NativeStateHandle? _handle;
        private readonly bool _added;

        public StateLease(IKernelState? state)
        {
            if (state is null)
            {
                return;
            }

            _handle = ((NativeState)state).Handle;
            try
            {
                _handle.DangerousAddRef(ref _added);
            }
            catch (ObjectDisposedException)
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

    private sealed class NativeState(NativeStateHandle handle, long sizeBytes) : IKernelState
    {
        public NativeStateHandle Handle { get; } = handle;

        public BackendKind Backend => BackendKind.Native;

        public long SizeBytes { get; } = sizeBytes;

        public void Dispose() => Handle.Dispose();
    }

    private sealed class NativeStream(NativeStreamHandle handle, string kernel) : IKernelStream
    {
        public unsafe void Append(ReadOnlySpan<byte> data)
        {
            using var lease = new HandleLease(handle);
            fixed (byte* d = data)
            {
                NativeErrors.ThrowIfError(NativeMethods.tandem_stream_update(handle.Id, d, (nuint)data.Length), kernel);
            }
        }

        public unsafe void Finalize(Span<byte> output)
        {
            using var lease = new HandleLease(handle);
            fixed (byte* o = output)
            {
                NativeErrors.ThrowIfError(NativeMethods.tandem_stream_finalize(handle.Id, o, (nuint)output.Length), kernel);
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

