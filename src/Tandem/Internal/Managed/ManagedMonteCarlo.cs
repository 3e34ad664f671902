using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>
/// <c>montecarlo.european</c> in C#: the same Philox4x32-10 streams, the same
/// Box–Muller transform, the same block decomposition and merge order as the
/// Rust kernel, vectorised with <see cref="Vector512"/> (Philox) and
/// <see cref="TensorPrimitives"/> (log, sincos, exp), parallel over blocks.
/// </summary>
internal sealed class ManagedMonteCarlo : IManagedKernel
{
    /// <summary>Paths per block; must equal the Rust kernel's BLOCK.</summary>
    public const int Block = 4096;
    private const int Pairs = Block / 2;

    public string Name => KernelContracts.MonteCarloEuropean;

    public string DescriptorHash => ReferenceKernels.MontecarloEuropean.Hash;

    public void Run(KernelCall call, CancellationToken cancellationToken) => Price(
        call.InputMemory<double>(0),
        call.InputMemory<long>(1),
        call.IntParam(0),
        unchecked((ulong)call.IntParam(1)),
        call.IntParam(2) != 0,
        call.OutputSpan<double>(0),
        call.OutputSpan<double>(1),
        cancellationToken);

    internal static void Price(ReadOnlyMemory<double> rows, ReadOnlyMemory<long> rowKeys, long paths, ulong seed, bool antithetic, Span<double> prices, Span<double> standardErrors, CancellationToken cancellationToken)
    {
        var batch = rowKeys.Length;
        var blocks = (paths + Block - 1) / Block;
        // Block statistics for as many rows at a time as fit a bounded array
        // (all rows at once for typical calls), merged per row in block order.
        var rowsPerPass = (int)Math.Clamp((1 << 20) / blocks, 1, batch);
        var stats = new Stats[rowsPerPass * blocks];
        for (var firstRow = 0; firstRow < batch; firstRow += rowsPerPass)
        {
            var passRows = Math.Min(rowsPerPass, batch - firstRow);
            try
            {
                Parallel.For(0L, passRows * blocks, new ParallelOptions { CancellationToken = cancellationToken }, index =>
                {
                    var row = firstRow + (int)(index / blocks);
                    var first = (index % blocks) * Block;
                    var count = (int)Math.Min(Block, paths - first);
                    var contract = Prepare(rows.Span.Slice(row * 6, 6), antithetic);
                    stats[index] = BlockStats(contract, seed, (ulong)rowKeys.Span[row], (ulong)first, count);
                });
            }
            catch (OperationCanceledException)
            {
                throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller", KernelContracts.MonteCarloEuropean, BackendKind.Managed);
            }

            for (var row = firstRow; row < firstRow + passRows; row++)
            {
                var total = default(Stats);
                for (var block = 0L; block < blocks; block++)
                {
                    total = total.Merge(stats[((row - firstRow) * blocks) + block]);
                }

                Finish(rows.Span.Slice(row * 6, 6), total, out prices[row], out standardErrors[row]);
            }
        }
    }

    private static void Finish(ReadOnlySpan<double> values, Stats total, out double price, out double standardError)
    {
        var discount = Math.Exp(-values[2] * values[4]);
        price = discount * total.Mean;
        standardError = total.N > 1 ? discount * Math.Sqrt(total.M2 / (total.N - 1) / total.N) : 0;
    }

    private static Prepared Prepare(ReadOnlySpan<double> v, bool antithetic) => new(
        Spot: v[0],
        Strike: v[1],
        Drift: (v[2] - (0.5 * v[3] * v[3])) * v[4],
        Diffusion: v[3] * Math.Sqrt(v[4]),
        Sign: v[5] == 1 ? 1.0 : -1.0,
        Antithetic: antithetic);

    private static Stats BlockStats(Prepared p, ulong seed, ulong row, ulong first, int count)
    {
        var buffer = ArrayPool<double>.Shared.Rent((4 * Pairs) + (3 * Block));
        try
        {
            var span = buffer.AsSpan();
            var u1 = span[..Pairs];
            var u2 = span.Slice(Pairs, Pairs);
            var sin = span.Slice(2 * Pairs, Pairs);
            var cos = span.Slice(3 * Pairs, Pairs);
            var z = span.Slice(4 * Pairs, Block);
            var exponent = span.Slice((4 * Pairs) + Block, Block);
            var payoff = span.Slice((4 * Pairs) + (2 * Block), Block);
            var pairs = (count + 1) / 2;
            Philox.Uniforms(seed, row, first / 2, u1[..pairs], u2[..pairs]);

            // Box–Muller: radius √(−2 ln u1), angle 2π u2.
            TensorPrimitives.Log(u1[..pairs], u1[..pairs]);
            TensorPrimitives.Multiply(u1[..pairs], -2.0, u1[..pairs]);
            TensorPrimitives.Sqrt(u1[..pairs], u1[..pairs]);
            TensorPrimitives.Multiply(u2[..pairs], 2 * Math.PI, u2[..pairs]);
            TensorPrimitives.SinCos(u2[..pairs], sin[..pairs], cos[..pairs]);

            // Path 2j draws the cosine normal, path 2j+1 the sine one; with an
            // odd count the last sine path is not part of the block.
            var sinePaths = count / 2;
            var z0 = z[..pairs];
            var z1 = z.Slice(pairs, sinePaths);
            TensorPrimitives.Multiply(u1[..pairs], cos[..pairs], z0);
            TensorPrimitives.Multiply(u1[..sinePaths], sin[..sinePaths], z1);
            var samples = z[..count];
            Payoffs(p, samples, exponent[..count], payoff[..count]);
            if (p.Antithetic)
            {
                TensorPrimitives.Negate(samples, samples);
                Payoffs(p, samples, exponent[..count], exponent[..count]);
                TensorPrimitives.Add(payoff[..count], exponent[..count], payoff[..count]);
                TensorPrimitives.Multiply(payoff[..count], 0.5, payoff[..count]);
            }

            // Same order as the Rust kernel: cosine paths, then sine paths.
            var cosine = payoff[..pairs];
            var sine = payoff.Slice(pairs, sinePaths);
            var mean = (LaneSum(cosine, 0, squared: false) + LaneSum(sine, 0, squared: false)) / count;
            var m2 = LaneSum(cosine, mean, squared: true) + LaneSum(sine, mean, squared: true);
            return new Stats(count, mean, m2);
        }
        finally
        {
            ArrayPool<double>.Shared.Return(buffer);
        }
    }

    /// <summary>max(sign·(S·exp(drift + diffusion·z) − K), 0), unfused like the Rust kernel.</summary>
    private static void Payoffs(Prepared p, ReadOnlySpan<double> z, Span<double> exponent, Span<double> payoff)
    {
        TensorPrimitives.Multiply(z, p.Diffusion, exponent);
        TensorPrimitives.Add(exponent, p.Drift, exponent);
        TensorPrimitives.Exp(exponent, exponent);
        TensorPrimitives.Multiply(exponent, p.Spot, exponent);
        TensorPrimitives.Subtract(exponent, p.Strike, exponent);
        TensorPrimitives.Multiply(exponent, p.Sign, exponent);
        // MaxNumber, like Rust's f64::max, drops a NaN (0 × ∞ for a zero spot) in favour of 0.
        TensorPrimitives.MaxNumber(exponent, 0.0, payoff);
    }

    /// <summary>Sum over 8 interleaved lanes, then the lanes in the Rust kernel's order.</summary>
    private static double LaneSum(ReadOnlySpan<double> values, double mean, bool squared)
    {
        Span<double> lanes = stackalloc double[8];
        lanes.Clear();
        for (var i = 0; i < values.Length; i++)
        {
            var v = squared ? (values[i] - mean) * (values[i] - mean) : values[i];
            lanes[i & 7] += v;
        }

        return ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6])) + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]));
    }

    private readonly record struct Prepared(double Spot, double Strike, double Drift, double Diffusion, double Sign, bool Antithetic);

    private readonly record struct Stats(double N, double Mean, double M2)
    {
        /// <summary>Chan et al.'s pairwise merge, as in the Rust kernel.</summary>
        public Stats Merge(Stats other)
        {
            if (N == 0)
            {
                return other;
            }

            var n = N + other.N;
            var delta = other.Mean - Mean;
            return new Stats(n, Mean + (delta * (other.N / n)), M2 + other.M2 + (delta * delta * (N * other.N / n)));
        }
    }
}

/// <summary>Philox4x32-10, eight counters at a time with AVX-512 where available.</summary>
internal static class Philox
{
    private const ulong M0 = 0xD2511F53;
    private const ulong M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9;
    private const uint W1 = 0xBB67AE85;

    /// <summary>Ten rounds over counter (c0..c3) under key (k0, k1).</summary>
    public static (uint, uint, uint, uint) Generate(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (var round = 0; round < 10; round++)
        {
            if (round > 0)
            {
                k0 += W0;
                k1 += W1;
            }

            var p0 = M0 * c0;
            var p1 = M1 * c2;
            (c0, c1, c2, c3) = ((uint)(p1 >> 32) ^ c1 ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c3 ^ k1, (uint)p0);
        }

        return (c0, c1, c2, c3);
    }

    /// <summary>(k + 0.5) / 2^52 from the top 52 bits: exact, never 0 or 1.</summary>
    public static double OpenUnit(uint hi, uint lo) => (((((ulong)hi << 32) | lo) >> 12) * (1.0 / (1UL << 52))) + (0.5 / (1UL << 52));

    /// <summary>Uniforms of pairs <c>firstPair..</c> of one row: u1 from words 0–1, u2 from words 2–3.</summary>
    public static void Uniforms(ulong seed, ulong row, ulong firstPair, Span<double> u1, Span<double> u2)
    {
        var (k0, k1) = ((uint)seed, (uint)(seed >> 32));
        var (r0, r1) = ((uint)row, (uint)(row >> 32));
        var j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var lane = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            for (; j + 8 <= u1.Length; j += 8)
            {
                var pair = Vector512.Create(firstPair + (ulong)j) + lane;
                var (x0, x1, x2, x3) = Generate8(pair & Vector512.Create(0xFFFFFFFFUL), pair >> 32, Vector512.Create((ulong)r0), Vector512.Create((ulong)r1), k0, k1);
                OpenUnits(x0, x1).CopyTo(u1[j..]);
                OpenUnits(x2, x3).CopyTo(u2[j..]);
            }
        }

        for (; j < u1.Length; j++)
        {
            var pair = firstPair + (ulong)j;
            var (x0, x1, x2, x3) = Generate((uint)pair, (uint)(pair >> 32), r0, r1, k0, k1);
            u1[j] = OpenUnit(x0, x1);
            u2[j] = OpenUnit(x2, x3);
        }
    }

    private static Vector512<double> OpenUnits(Vector512<ulong> hi, Vector512<ulong> lo)
    {
        var bits = ((hi << 32) | lo) >> 12;
        return (Vector512.ConvertToDouble(bits) * (1.0 / (1UL << 52))) + Vector512.Create(0.5 / (1UL << 52));
    }

    /// <summary>Eight Philox evaluations; each 32-bit word lives in a 64-bit lane.</summary>
    private static (Vector512<ulong>, Vector512<ulong>, Vector512<ulong>, Vector512<ulong>) Generate8(Vector512<ulong> c0, Vector512<ulong> c1, Vector512<ulong> c2, Vector512<ulong> c3, uint k0, uint k1)
    {
        var low = Vector512.Create(0xFFFFFFFFUL);
        for (var round = 0; round < 10; round++)
        {
            if (round > 0)
            {
                k0 += W0;
                k1 += W1;
            }

            var p0 = c0 * M0;
            var p1 = c2 * M1;
            var next0 = (p1 >> 32) ^ c1 ^ Vector512.Create((ulong)k0);
            var next2 = (p0 >> 32) ^ c3 ^ Vector512.Create((ulong)k1);
            c1 = p1 & low;
            c3 = p0 & low;
            c0 = next0;
            c2 = next2;
        }

        return (c0, c1, c2, c3);
    }
}
