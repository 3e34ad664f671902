using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using static Tandem.Tests.Native.NativeLibraryFixture;

namespace Tandem.Tests.Native;

/// <summary>
/// Prepared calls through <see cref="NativeKernel.InvokePrepared"/>: a shape
/// is prepared when it repeats, batches of one row shape share a prepared
/// call, the table stays bounded, and every result and refusal is what an
/// unprepared call gives.
/// </summary>
public sealed unsafe class NativePreparedCallsTests
{
    private static readonly double[] Option = [100, 100, 0.01, 0.2, 1, 1];

    [Fact]
    public void InvokePrepared_RepeatedShape_PreparedOnceOnTheSecondCallAndSameResults()
    {
        var kernel = NewKernel(KernelContracts.MonteCarloEuropean);

        var first = Price(kernel, rows: 2, paths: 5_000, prepared: true);
        Assert.Equal(0, kernel.Prepared.Prepared);
        var second = Price(kernel, rows: 2, paths: 5_000, prepared: true);
        var third = Price(kernel, rows: 2, paths: 5_000, prepared: true);

        Assert.Equal(1, kernel.Prepared.Prepared);
        var unprepared = Price(kernel, rows: 2, paths: 5_000, prepared: false);
        Assert.Equal(unprepared, first);
        Assert.Equal(unprepared, second);
        Assert.Equal(unprepared, third);
    }

    [Fact]
    public void InvokePrepared_BatchesOfOneRowShape_ShareOnePreparedCall()
    {
        var kernel = NewKernel(KernelContracts.MonteCarloEuropean);
        Price(kernel, rows: 3, paths: 2_000, prepared: true);
        Price(kernel, rows: 3, paths: 2_000, prepared: true);

        foreach (var rows in new[] { 1, 5, 17, 3 })
        {
            Assert.Equal(Price(kernel, rows, paths: 2_000, prepared: false), Price(kernel, rows, paths: 2_000, prepared: true));
        }

        Assert.Equal(1, kernel.Prepared.Prepared);
    }

    [Fact]
    public void InvokePrepared_ManyRepeatingParameterSets_TableStaysBoundedAndResultsStayRight()
    {
        var kernel = NewKernel(KernelContracts.MonteCarloEuropean);

        for (var round = 0; round < 2; round++)
        {
            for (var paths = 1_000; paths < 1_000 + (3 * NativePreparedCalls.Capacity); paths++)
            {
                Price(kernel, rows: 1, paths, prepared: true);
                Assert.Equal(Price(kernel, rows: 1, paths, prepared: false), Price(kernel, rows: 1, paths, prepared: true));
            }
        }

        // Every parameter set repeated, so each was prepared; replaced ones are freed by their finalizers.
        Assert.True(kernel.Prepared.Prepared >= 3 * NativePreparedCalls.Capacity, $"{kernel.Prepared.Prepared}");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(Price(kernel, rows: 1, paths: 1_000, prepared: false), Price(kernel, rows: 1, paths: 1_000, prepared: true));
    }

    [Fact]
    public void InvokePrepared_NonFiniteQueryAfterPreparing_SameRefusalAsUnprepared()
    {
        var kernel = NewKernel(KernelContracts.SimilarityTopK);
        using var collection = Collection();
        float[] query = [1, 0];
        Search(kernel, collection, query, prepared: true);
        Search(kernel, collection, query, prepared: true);
        Assert.Equal(1, kernel.Prepared.Prepared);

        query[0] = float.NaN;
        var prepared = Assert.Throws<TandemException>(() => Search(kernel, collection, query, prepared: true));
        var unprepared = Assert.Throws<TandemException>(() => Search(kernel, collection, query, prepared: false));

        Assert.Equal(TandemStatusCode.InvalidArgument, prepared.Code);
        Assert.Equal(unprepared.Message, prepared.Message);
    }

    [Fact]
    public void InvokePrepared_WithoutItsState_SameRefusalAsUnprepared()
    {
        var kernel = NewKernel(KernelContracts.SimilarityTopK);
        using var collection = Collection();
        float[] query = [0, 1];
        Search(kernel, collection, query, prepared: true);
        Assert.Equal(11, Search(kernel, collection, query, prepared: true));

        var prepared = Assert.Throws<TandemException>(() => Search(kernel, null, query, prepared: true));
        var unprepared = Assert.Throws<TandemException>(() => Search(kernel, null, query, prepared: false));

        Assert.Equal(unprepared.Message, prepared.Message);
        Assert.Contains("needs a 'vector_collection' state", prepared.Message);
    }

    [Fact]
    public void InvokePrepared_OverTheWorkBoundAtANewRowCount_ResourceExhaustedAsUnprepared()
    {
        var kernel = NewKernel(KernelContracts.MonteCarloEuropean);
        Price(kernel, rows: 1, paths: 1_000_000, prepared: true);
        Price(kernel, rows: 1, paths: 1_000_000, prepared: true);

        // 10,001 rows × 10^6 paths is over the bound of 10^10: refused before any path runs.
        var prepared = Assert.Throws<TandemException>(() => Price(kernel, rows: 10_001, paths: 1_000_000, prepared: true));
        var unprepared = Assert.Throws<TandemException>(() => Price(kernel, rows: 10_001, paths: 1_000_000, prepared: false));

        Assert.Equal(TandemStatusCode.ResourceExhausted, prepared.Code);
        Assert.Equal(unprepared.Message, prepared.Message);
        Assert.Equal(TandemStatusCodes.WorkLimit, prepared.Limit);
    }

    private static NativeKernel NewKernel(string name) => new(Lib, name, Runtime.Find(name));

    private static double[] Price(NativeKernel kernel, int rows, long paths, bool prepared)
    {
        var options = new double[rows * 6];
        var keys = new long[rows];
        for (var i = 0; i < rows; i++)
        {
            Option.CopyTo(options, i * 6);
            options[i * 6] = 90 + i;
            keys[i] = i;
        }

        var prices = new double[rows * 2];
        fixed (double* o = options)
        fixed (long* k = keys)
        fixed (double* p = prices)
        {
            var args = default(NativeCallArgs);
            args.AddInput(NativeTensor.Create(o, options.Length, NativeDType.F64, rows, 6));
            args.AddInput(NativeTensor.Create(k, keys.Length, NativeDType.I64, rows));
            args.AddOutput(NativeTensor.Create(p, rows, NativeDType.F64, rows));
            args.AddOutput(NativeTensor.Create(p + rows, rows, NativeDType.F64, rows));
            args.AddParam(NativeParam.Int(paths));
            args.AddParam(NativeParam.Int(7));
            args.AddParam(NativeParam.Int(0));
            Run(kernel, 0, ref args, prepared);
        }

        return prices;
    }

    private static long Search(NativeKernel kernel, NativeStateHandle? collection, float[] query, bool prepared)
    {
        var ids = new long[1];
        var scores = new float[1];
        fixed (float* q = query)
        fixed (long* i = ids)
        fixed (float* s = scores)
        {
            var args = default(NativeCallArgs);
            args.AddInput(NativeTensor.Create(q, query.Length, NativeDType.F32, 1, query.Length));
            args.AddOutput(NativeTensor.Create(i, 1, NativeDType.I64, 1, 1));
            args.AddOutput(NativeTensor.Create(s, 1, NativeDType.F32, 1, 1));
            args.AddParam(NativeParam.Int(1));
            args.AddParam(NativeParam.Int(0));
            Run(kernel, collection?.DangerousGetHandle() ?? 0, ref args, prepared);
        }

        return ids[0];
    }

    private static void Run(NativeKernel kernel, nint state, ref NativeCallArgs args, bool prepared)
    {
        var context = default(NativeCallContext);
        if (prepared)
        {
            kernel.InvokePrepared(state, ref args, ref context);
        }
        else
        {
            kernel.Invoke(state, ref args, ref context);
        }
    }

    /// <summary>Four 2-d rows with ids 10..13.</summary>
    private static NativeStateHandle Collection()
    {
        float[] vectors = [1, 0, 0, 1, -1, 0, 0.5f, 0.5f];
        long[] ids = [10, 11, 12, 13];
        var kind = "vector_collection"u8.ToArray();
        nint state = 0;
        fixed (float* v = vectors)
        fixed (long* i = ids)
        fixed (byte* k = kind)
        {
            var tensors = stackalloc NativeTensor[2];
            tensors[0] = NativeTensor.Create(v, vectors.Length, NativeDType.F32, 4, 2);
            tensors[1] = NativeTensor.Create(i, ids.Length, NativeDType.I64, 4);
            NativeErrors.ThrowIfError(Lib, Lib.tandem_state_create(k, (nuint)kind.Length, tensors, 2, &state), "vector_collection");
        }

        return new NativeStateHandle(Lib, state);
    }
}
