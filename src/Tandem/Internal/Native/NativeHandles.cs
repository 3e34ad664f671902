using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>Owns one reference to a native state (tandem_state_free on release).</summary>
internal sealed class NativeStateHandle : SafeHandle
{
    public NativeStateHandle(nint handle)
        : base(0, ownsHandle: true) => SetHandle(handle);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        NativeMethods.tandem_state_free(handle);
        return true;
    }
}

/// <summary>Owns a native cancellation token (tandem_cancel_free on release).</summary>
internal sealed class NativeCancelHandle : SafeHandle
{
    public NativeCancelHandle()
        : base(0, ownsHandle: true) => SetHandle(NativeMethods.tandem_cancel_new());

    public override bool IsInvalid => handle == 0;

    public void Cancel()
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            NativeMethods.tandem_cancel_set(handle);
        }
        catch (ObjectDisposedException)
        {
            // The call already completed; nothing left to cancel.
        }
        finally
        {
            if (added)
            {
                DangerousRelease();
            }
        }
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.tandem_cancel_free(handle);
        return true;
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
        NativeErrors.Take(NativeMethods.tandem_stream_free((ulong)handle), null);
        return true;
    }
}
