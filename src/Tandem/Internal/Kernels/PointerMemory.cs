using System.Buffers;

namespace Tandem.Internal.Kernels;

/// <summary>
/// A <see cref="Memory{T}"/> over memory that a <see cref="KernelCall"/>
/// keeps pinned, so managed kernels can hand it to parallel loops.
/// </summary>
internal sealed unsafe class PointerMemory<T>(T* pointer, int length) : MemoryManager<T>
    where T : unmanaged
{
    public override Span<T> GetSpan() => new(pointer, length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
