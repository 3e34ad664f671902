using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>
/// BLAKE3 in C# (hash mode, with extended output), following the
/// specification's reference structure: chunk states, a stack of chaining
/// values merged as chunks complete, and root output blocks by counter.
/// </summary>
internal sealed class ManagedBlake3 : ISynchronousKernelStream
{
    private const int BlockLength = 64;
    private const int ChunkLength = 1024;
    private const uint ChunkStart = 1;
    private const uint ChunkEnd = 2;
    private const uint Parent = 4;
    private const uint Root = 8;

    private static readonly uint[] Iv = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19];

    private readonly uint[] _cvStack = new uint[54 * 8];
    private int _cvStackLength;
    private ChunkState _chunk = new(Iv, 0);

    public void Append(ReadOnlySpan<byte> input)
    {
        Span<uint> chunkCv = stackalloc uint[8];
        while (!input.IsEmpty)
        {
            if (_chunk.Length == ChunkLength)
            {
                _chunk.Output().ChainingValue(chunkCv);
                var totalChunks = _chunk.Counter + 1;
                AddChunkChainingValue(chunkCv, totalChunks);
                _chunk = new ChunkState(Iv, totalChunks);
            }

            var take = Math.Min(ChunkLength - _chunk.Length, input.Length);
            _chunk.Update(input[..take]);
            input = input[take..];
        }
    }

    public void Finalize(Span<byte> output)
    {
        var node = _chunk.Output();
        Span<uint> cv = stackalloc uint[8];
        for (var remaining = _cvStackLength; remaining > 0; remaining--)
        {
            node.ChainingValue(cv);
            node = ParentOutput(_cvStack.AsSpan((remaining - 1) * 8, 8), cv);
        }

        node.RootBytes(output);
    }

    public void Dispose()
    {
    }

    /// <summary>One-shot digest of <paramref name="input"/>.</summary>
    public static void Hash(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var hasher = new ManagedBlake3();
        hasher.Append(input);
        hasher.Finalize(output);
    }

    private void AddChunkChainingValue(Span<uint> cv, ulong totalChunks)
    {
        // Merge completed subtrees: one merge per trailing zero bit of the count.
        Span<uint> merged = stackalloc uint[8];
        while ((totalChunks & 1) == 0)
        {
            _cvStackLength--;
            ParentOutput(_cvStack.AsSpan(_cvStackLength * 8, 8), cv).ChainingValue(merged);
            merged.CopyTo(cv);
            totalChunks >>= 1;
        }

        cv.CopyTo(_cvStack.AsSpan(_cvStackLength * 8, 8));
        _cvStackLength++;
    }

    private static Output ParentOutput(ReadOnlySpan<uint> left, ReadOnlySpan<uint> right)
    {
        var block = new uint[16];
        left.CopyTo(block);
        right.CopyTo(block.AsSpan(8));
        return new Output(Iv, block, 0, BlockLength, Parent);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void G(Span<uint> s, int a, int b, int c, int d, uint mx, uint my)
    {
        s[a] = s[a] + s[b] + mx;
        s[d] = BitOperations.RotateRight(s[d] ^ s[a], 16);
        s[c] = s[c] + s[d];
        s[b] = BitOperations.RotateRight(s[b] ^ s[c], 12);
        s[a] = s[a] + s[b] + my;
        s[d] = BitOperations.RotateRight(s[d] ^ s[a], 8);
        s[c] = s[c] + s[d];
        s[b] = BitOperations.RotateRight(s[b] ^ s[c], 7);
    }

    /// <summary>The compression function: 7 rounds, message permuted between rounds.</summary>
    private static void Compress(ReadOnlySpan<uint> cv, ReadOnlySpan<uint> blockWords, ulong counter, uint blockLength, uint flags, Span<uint> state)
    {
        cv[..8].CopyTo(state);
        Iv.AsSpan(0, 4).CopyTo(state[8..]);
        state[12] = (uint)counter;
        state[13] = (uint)(counter >> 32);
        state[14] = blockLength;
        state[15] = flags;
        Span<uint> m = stackalloc uint[16];
        Span<uint> permuted = stackalloc uint[16];
        blockWords.CopyTo(m);
        for (var round = 0; round < 7; round++)
        {
            G(state, 0, 4, 8, 12, m[0], m[1]);
            G(state, 1, 5, 9, 13, m[2], m[3]);
            G(state, 2, 6, 10, 14, m[4], m[5]);
            G(state, 3, 7, 11, 15, m[6], m[7]);
            G(state, 0, 5, 10, 15, m[8], m[9]);
            G(state, 1, 6, 11, 12, m[10], m[11]);
            G(state, 2, 7, 8, 13, m[12], m[13]);
            G(state, 3, 4, 9, 14, m[14], m[15]);
            if (round < 6)
            {
                // The message permutation 2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8.
                permuted[0] = m[2];
                permuted[1] = m[6];
                permuted[2] = m[3];
                permuted[3] = m[10];
                permuted[4] = m[7];
                permuted[5] = m[0];
                permuted[6] = m[4];
                permuted[7] = m[13];
                permuted[8] = m[1];
                permuted[9] = m[11];
                permuted[10] = m[12];
                permuted[11] = m[5];
                permuted[12] = m[9];
                permuted[13] = m[14];
                permuted[14] = m[15];
                permuted[15] = m[8];
                permuted.CopyTo(m);
            }
        }

        for (var i = 0; i < 8; i++)
        {
            state[i] ^= state[i + 8];
            state[i + 8] ^= cv[i];
        }
    }

    private static void ReadWords(ReadOnlySpan<byte> block, Span<uint> words)
    {
        for (var i = 0; i < 16; i++)
        {
            words[i] = BinaryPrimitives.ReadUInt32LittleEndian(block[(4 * i)..]);
        }
    }

    /// <summary>A node whose chaining value or root output is still to be computed.</summary>
    private readonly struct Output(uint[] inputCv, uint[] blockWords, ulong counter, uint blockLength, uint flags)
    {
        public void ChainingValue(Span<uint> cv)
        {
            Span<uint> state = stackalloc uint[16];
            Compress(inputCv, blockWords, counter, blockLength, flags, state);
            state[..8].CopyTo(cv);
        }

        public void RootBytes(Span<byte> output)
        {
            Span<uint> state = stackalloc uint[16];
            Span<byte> block = stackalloc byte[BlockLength];
            for (ulong outputBlock = 0; !output.IsEmpty; outputBlock++)
            {
                Compress(inputCv, blockWords, outputBlock, blockLength, flags | Root, state);
                for (var i = 0; i < 16; i++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(block[(4 * i)..], state[i]);
                }

                var take = Math.Min(BlockLength, output.Length);
                block[..take].CopyTo(output);
                output = output[take..];
            }
        }
    }

    /// <summary>Up to 1024 bytes of input: 16 blocks chained through the compression function.</summary>
    private sealed class ChunkState(uint[] key, ulong counter)
    {
        private readonly uint[] _cv = (uint[])key.Clone();
        private readonly byte[] _block = new byte[BlockLength];
        private int _blockLength;
        private int _blocksCompressed;

        public ulong Counter { get; } = counter;

        public int Length => (BlockLength * _blocksCompressed) + _blockLength;

        private uint StartFlag => _blocksCompressed == 0 ? ChunkStart : 0;

        public void Update(ReadOnlySpan<byte> input)
        {
            Span<uint> words = stackalloc uint[16];
            Span<uint> state = stackalloc uint[16];
            while (!input.IsEmpty)
            {
                if (_blockLength == BlockLength)
                {
                    ReadWords(_block, words);
                    Compress(_cv, words, Counter, BlockLength, StartFlag, state);
                    state[..8].CopyTo(_cv);
                    _blocksCompressed++;
                    Array.Clear(_block);
                    _blockLength = 0;
                }

                var take = Math.Min(BlockLength - _blockLength, input.Length);
                input[..take].CopyTo(_block.AsSpan(_blockLength));
                _blockLength += take;
                input = input[take..];
            }
        }

        public Output Output()
        {
            var words = new uint[16];
            ReadWords(_block, words);
            return new Output(_cv, words, Counter, (uint)_blockLength, StartFlag | ChunkEnd);
        }
    }
}
