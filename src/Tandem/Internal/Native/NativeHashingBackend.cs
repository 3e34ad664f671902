using System.Runtime.InteropServices;
using Tandem.Internal.Contracts;
using Tandem.Internal.Hashing;

namespace Tandem.Internal.Native;

/// <summary>
/// <c>hash.blake3</c> on libtandem.so: one-shot through the generic kernel
/// call, streams through integer handles owned by <see cref="NativeStreamHandle"/>.
/// </summary>
internal sealed class NativeHashingBackend(NativeKernel kernel, nint kernelHandle) : IHashingBackend
{
    public BackendKind Kind => BackendKind.Native;

    public unsafe void Hash(ReadOnlySpan<byte> data, Span<byte> output)
    {
        Span<NativeTensor> inputs = stackalloc NativeTensor[1];
        Span<NativeTensor> outputs = stackalloc NativeTensor[1];
        var context = default(NativeCallContext);
        fixed (byte* d = data)
        fixed (byte* o = output)
        {
            inputs[0] = NativeTensor.Create(d, data.Length, NativeDType.U8, data.Length);
            outputs[0] = NativeTensor.Create(o, output.Length, NativeDType.U8, output.Length);
            kernel.Invoke(0, inputs, [], outputs, ref context);
        }
    }

    public unsafe IHashState Open()
    {
        ulong id;
        NativeErrors.ThrowIfError(NativeMethods.tandem_stream_open(kernelHandle, &id), KernelContracts.HashBlake3);
        return new NativeHashState(new NativeStreamHandle(id));
    }

    private sealed class NativeHashState(NativeStreamHandle handle) : IHashState
    {
        public unsafe void Append(ReadOnlySpan<byte> data)
        {
            using var lease = new HandleLease(handle);
            fixed (byte* d = data)
            {
                NativeErrors.ThrowIfError(NativeMethods.tandem_stream_update(handle.Id, d, (nuint)data.Length), KernelContracts.HashBlake3);
            }
        }

        public unsafe void Finalize(Span<byte> output)
        {
            using var lease = new HandleLease(handle);
            fixed (byte* o = output)
            {
                NativeErrors.ThrowIfError(NativeMethods.tandem_stream_finalize(handle.Id, o, (nuint)output.Length), KernelContracts.HashBlake3);
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

/// <summary>Owns one native stream handle (tandem_stream_free on release).</summary>
internal sealed class NativeStreamHandle : SafeHandle
{
    public NativeStreamHandle(ulong id)
        : base(0, ownsHandle: true) => SetHandle((nint)id);

    public ulong Id => (ulong)handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        NativeErrors.Take(NativeMethods.tandem_stream_free((ulong)handle), KernelContracts.HashBlake3);
        return true;
    }
}
