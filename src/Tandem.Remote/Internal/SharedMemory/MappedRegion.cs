using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;

namespace Tandem.Remote.Internal.SharedMemory;

/// <summary>
/// A file under the shared-memory directory, created 0600 by this client and
/// mapped into it; workers map the same file once it is registered with them
/// by name. Deleted on dispose.
/// </summary>
internal sealed unsafe class MappedRegion : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly SafeMemoryMappedViewHandle _handle;
    private readonly byte* _pointer;
    private int _disposed;

    public MappedRegion(string directory, string name, long size)
    {
        Name = name;
        Path = System.IO.Path.Combine(directory, name);
        Size = size;
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            // Workers refuse regions with group or other permission bits.
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        var stream = new FileStream(Path, create);
        try
        {
            stream.SetLength(size);
            _file = MemoryMappedFile.CreateFromFile(stream, null, size, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            _view = _file.CreateViewAccessor(0, size, MemoryMappedFileAccess.ReadWrite);
            _handle = _view.SafeMemoryMappedViewHandle;
            byte* pointer = null;
            _handle.AcquirePointer(ref pointer);
            _pointer = pointer + _view.PointerOffset;
        }
        catch
        {
            stream.Dispose();
            File.Delete(Path);
            throw;
        }
    }

    public string Name { get; }

    public string Path { get; }

    public long Size { get; }

    /// <summary>Workers this region is registered with (by their connection).</summary>
    public HashSet<object> RegisteredWith { get; } = [];

    /// <summary>Start of the mapping; valid until dispose.</summary>
    public byte* Pointer => _pointer;

    public Span<byte> Slice(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset + length, Size);
        return new Span<byte>(_pointer + offset, checked((int)length));
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _handle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
        File.Delete(Path);
    }
}
