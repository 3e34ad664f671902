using System.Runtime.InteropServices;

namespace Tandem.Internal.Native;

/// <summary>
/// Owns one reference to a native state (tandem_state_free of its library on
/// release) and, when given, a hold on the library generation it was built in.
/// </summary>
internal sealed class NativeStateHandle : SafeHandle
{
    private readonly NativeLibraryBinding _library;
    private readonly NativeGeneration? _generation;

    public NativeStateHandle(NativeLibraryBinding library, nint handle, NativeGeneration? generation = null)
        : base(0, ownsHandle: true)
    {
        _library = library;
        _generation = generation;
        SetHandle(handle);
    }

    public override bool IsInvalid => handle == 0;

    protected override unsafe bool ReleaseHandle()
    {
        _library.tandem_state_free(handle);
        _generation?.Release();
        return true;
    }
}

/// <summary>Owns a native cancellation token (tandem_cancel_free of its library on release).</summary>
internal sealed class NativeCancelHandle : SafeHandle
{
    private readonly NativeLibraryBinding _library;

    public unsafe NativeCancelHandle(NativeLibraryBinding library)
        : base(0, ownsHandle: true)
    {
        _library = library;
        SetHandle(library.tandem_cancel_new());
    }

    public override bool IsInvalid => handle == 0;

    public unsafe void Cancel()
    {
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            _library.tandem_cancel_set(handle);
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

    protected override unsafe bool ReleaseHandle()
    {
        _library.tandem_cancel_free(handle);
        return true;
    }
}

/// <summary>
/// Owns one native stream handle (tandem_stream_free on release) and a hold
/// on the library generation it was opened in: a stream finishes on the
/// library that started it, even after a hot swap.
/// </summary>
internal sealed class NativeStreamHandle : SafeHandle
{
    private readonly NativeGeneration _generation;

    public NativeStreamHandle(NativeGeneration generation, ulong id)
        : base(0, ownsHandle: true)
    {
        _generation = generation;
        SetHandle((nint)id);
    }

    public ulong Id => (ulong)handle;

    public NativeLibraryBinding Library => _generation.Runtime.Binding;

    public override bool IsInvalid => handle == 0;

    protected override unsafe bool ReleaseHandle()
    {
        try
        {
            NativeErrors.Take(Library, Library.tandem_stream_free((ulong)handle), null);
        }
        finally
        {
            _generation.Release();
        }

        return true;
    }
}
