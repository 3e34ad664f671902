using System.Numerics.Tensors;

namespace Tandem.Internal.Contracts;

/// <summary>Input checks shared by every backend, run before any kernel.</summary>
internal static class Validation
{
    /// <summary>Index of the first row holding NaN or infinity, or -1.</summary>
    public static int FirstNonFiniteRow(ReadOnlySpan<float> values, int rowLength)
    {
        // x * 0 is 0 for finite x and NaN otherwise, so one vectorised sum
        // per block finds whether the block needs a closer look.
        const int Block = 4096;
        for (var start = 0; start < values.Length; start += Block)
        {
            var block = values.Slice(start, Math.Min(Block, values.Length - start));
            if (float.IsFinite(TensorPrimitives.Sum(block)))
            {
                continue;
            }

            for (var i = 0; i < block.Length; i++)
            {
                if (!float.IsFinite(block[i]))
                {
                    return (start + i) / rowLength;
                }
            }
        }

        return -1;
    }
}
