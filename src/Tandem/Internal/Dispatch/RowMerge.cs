using System.Buffers;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;

namespace Tandem.Internal.Dispatch;

/// <summary>
/// Merges the rows of compatible calls (same kernel, state and parameters)
/// into one call over pooled contiguous buffers along axis 0, and splits the
/// outputs back, in order. Batch invariance of the kernels makes each
/// caller's rows come out exactly as if it had run alone.
/// </summary>
internal sealed class RowMerge : IDisposable
{
    private static int _live;
    private readonly List<byte[]> _rented = [];
    private int _disposed;

    public RowMerge(IReadOnlyList<PendingCall> members)
    {
        Interlocked.Increment(ref _live);
        Members = members;
        try
        {
            var first = members[0].Call;
            var rows = 0L;
            var work = 0L;
            foreach (var member in members)
            {
                rows += member.Rows;
                work += member.Call.Work;
            }

            Merged = new KernelCall(first.Descriptor) { State = first.State, Work = work };
            for (var i = 0; i < first.InputCount; i++)
            {
                var buffer = Rent(members, i, output: false);
                var offset = 0;
                foreach (var member in members)
                {
                    var source = member.Call.InputSpan<byte>(i);
                    source.CopyTo(buffer.Span[offset..]);
                    offset += source.Length;
                }

                Merged.Input<byte>(buffer, Shape(first.Args.Inputs[i], rows));
                Merged.Args.Inputs[Merged.InputCount - 1].DType = first.Args.Inputs[i].DType;
            }

            for (var i = 0; i < first.OutputCount; i++)
            {
                Merged.Output(Rent(members, i, output: true), Shape(first.Args.Outputs[i], rows));
                Merged.Args.Outputs[Merged.OutputCount - 1].DType = first.Args.Outputs[i].DType;
            }

            for (var p = 0; p < first.ParamCount; p++)
            {
                Merged.Args.AddParam(first.Args.Params[p]);
            }
        }
        catch
        {
            // Return what was rented before the failure.
            Dispose();
            throw;
        }
    }

    /// <summary>Merges whose pooled buffers are not yet returned (for leak checks).</summary>
    public static int Live => Volatile.Read(ref _live);

    public IReadOnlyList<PendingCall> Members { get; }

    public KernelCall Merged { get; } = null!;

    /// <summary>Copies member <paramref name="index"/>'s rows of every output into its own buffers.</summary>
    public void CopyOut(int index)
    {
        for (var o = 0; o < Merged.OutputCount; o++)
        {
            var merged = Merged.OutputSpan<byte>(o);
            var offset = 0;
            for (var m = 0; m < index; m++)
            {
                offset += Members[m].Call.OutputSpan<byte>(o).Length;
            }

            var target = Members[index].Call.OutputSpan<byte>(o);
            merged.Slice(offset, target.Length).CopyTo(target);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        Interlocked.Decrement(ref _live);
        Merged?.Dispose();
        foreach (var buffer in _rented)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A pooled buffer exactly as long as the members' tensor <paramref name="tensor"/> together.</summary>
    private Memory<byte> Rent(IReadOnlyList<PendingCall> members, int tensor, bool output)
    {
        var bytes = 0;
        foreach (var member in members)
        {
            bytes += output ? member.Call.OutputSpan<byte>(tensor).Length : member.Call.InputSpan<byte>(tensor).Length;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(bytes, 1));
        _rented.Add(buffer);
        return buffer.AsMemory(0, bytes);
    }

    private static long[] Shape(in NativeTensor tensor, long rows)
    {
        var shape = new long[tensor.Rank];
        shape[0] = rows;
        for (var axis = 1; axis < tensor.Rank; axis++)
        {
            shape[axis] = tensor.Shape[axis];
        }

        return shape;
    }
}
