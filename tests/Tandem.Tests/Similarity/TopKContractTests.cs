using Microsoft.Extensions.DependencyInjection;
using Tandem.Similarity;
using Tandem.Tests.Remote;

namespace Tandem.Tests.Similarity;

/// <summary>
/// The <c>similarity.topk</c> contract, written once and run against every
/// backend (see the subclasses at the end of this file).
/// </summary>
public abstract class TopKContractTests : BackendContractTests<ISimilaritySearch>
{
    // Small enough that batch-64 cases take the asynchronous path too.
    protected TopKContractTests()
        : base(o => o.SyncWorkThreshold = 1_000_000)
    {
    }

    public static TheoryData<SimilarityMetric, int, int> Cases()
    {
        var data = new TheoryData<SimilarityMetric, int, int>();
        foreach (var metric in Enum.GetValues<SimilarityMetric>())
        {
            foreach (var batch in new[] { 1, 7, 64 })
            {
                foreach (var k in new[] { 1, 10, 1000 })
                {
                    data.Add(metric, batch, k);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task TopKAsync_IntegerData_MatchesBruteForce(SimilarityMetric metric, int batch, int k)
    {
        const int Dim = 24;
        var vectors = TestData.Integers(2500, Dim, seed: 11);
        await Sut.CreateCollectionAsync("c", vectors, Dim);
        var queries = TestData.Integers(batch, Dim, seed: 12 + batch);
        if (metric == SimilarityMetric.Cosine)
        {
            EnsureNonZeroRows(queries, Dim);
        }

        var result = await Sut.TopKAsync("c", queries, k, metric);

        Assert.Equal(Backend, result.Backend);
        Assert.Equal(batch, result.BatchSize);
        Assert.Equal(k, result.K);
        for (var q = 0; q < batch; q++)
        {
            var expected = TestData.Reference(vectors, Dim, queries.AsSpan(q * Dim, Dim), metric, k);
            for (var slot = 0; slot < k; slot++)
            {
                // Cosine divides, so equal f64 scores can differ in the last
                // f32 bit; the other metrics are exact on integer data.
                if (metric != SimilarityMetric.Cosine)
                {
                    Assert.Equal(expected[slot].Id, result.IdsOf(q)[slot]);
                }

                AssertClose(expected[slot].Score, result.ScoresOf(q)[slot]);
            }
        }
    }

    [Fact]
    public async Task TopKAsync_KAboveCollectionSize_ReturnsEveryRow()
    {
        var vectors = TestData.Integers(300, 8, seed: 3);
        await Sut.CreateCollectionAsync("small", vectors, 8);

        var result = await Sut.TopKAsync("small", TestData.Integers(2, 8, seed: 4), 1000, SimilarityMetric.L2);

        Assert.Equal(300, result.K);
        Assert.Equal(300, result.IdsOf(1).ToArray().Distinct().Count());
    }

    [Fact]
    public async Task TopKAsync_EqualScores_LowerIdFirst()
    {
        var vectors = Enumerable.Repeat(1f, 5 * 4).ToArray();
        await Sut.CreateCollectionAsync("ties", vectors, 4, new long[] { 50, 40, 30, 20, 10 });

        var result = await Sut.TopKAsync("ties", new float[] { 1, 1, 1, 1 }, 3);

        Assert.Equal(new long[] { 10, 20, 30 }, result.IdsOf(0).ToArray());
        Assert.Equal(new float[] { 4, 4, 4 }, result.ScoresOf(0).ToArray());
    }

    [Fact]
    public async Task TopKAsync_GaussianData_AgreesWithManagedReference()
    {
        const int Dim = 96;
        var vectors = TestData.Gaussian(4000, Dim, seed: 21);
        await Sut.CreateCollectionAsync("g", vectors, Dim);
        var queries = TestData.Gaussian(16, Dim, seed: 22);

        foreach (var metric in Enum.GetValues<SimilarityMetric>())
        {
            var result = await Sut.TopKAsync("g", queries, 10, metric);
            for (var q = 0; q < 16; q++)
            {
                var expected = TestData.Reference(vectors, Dim, queries.AsSpan(q * Dim, Dim), metric, 10);
                for (var slot = 0; slot < 10; slot++)
                {
                    AssertClose(expected[slot].Score, result.ScoresOf(q)[slot]);
                    // An id may differ only where two scores are within rounding.
                    if (expected[slot].Id != result.IdsOf(q)[slot])
                    {
                        var neighbour = slot + 1 < 10 ? expected[slot + 1].Score : expected[slot - 1].Score;
                        Assert.True(Math.Abs(neighbour - expected[slot].Score) <= 1e-4 * Math.Max(1, Math.Abs(expected[slot].Score)), $"{metric} q{q} slot {slot}");
                    }
                }
            }
        }
    }

    [Fact]
    public async Task TopKAsync_ResultOfARow_DoesNotDependOnBatchMates()
    {
        const int Dim = 40;
        await Sut.CreateCollectionAsync("inv", TestData.Gaussian(3000, Dim, seed: 31), Dim);
        var queries = TestData.Gaussian(9, Dim, seed: 32);

        var together = await Sut.TopKAsync("inv", queries, 25, SimilarityMetric.Cosine);
        for (var q = 0; q < 9; q++)
        {
            var alone = await Sut.TopKAsync("inv", queries.AsMemory(q * Dim, Dim), 25, SimilarityMetric.Cosine);
            Assert.Equal(together.IdsOf(q).ToArray(), alone.IdsOf(0).ToArray());
            Assert.Equal(together.ScoresOf(q).ToArray(), alone.ScoresOf(0).ToArray());
        }
    }

    [Fact]
    public async Task TopKAsync_DimensionMismatch_InvalidArgument()
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", new float[12], 3).AsTask());
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("dimension 8", error.Message);
        Assert.Equal("similarity.topk", error.Kernel);
        Assert.False(error.IsRetryable);
    }

    [Fact]
    public async Task TopKAsync_EmptyBatch_InvalidArgument()
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", ReadOnlyMemory<float>.Empty, 3).AsTask());
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("no rows", error.Message);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public async Task TopKAsync_NonFiniteQuery_NamesFirstBadRow(float bad)
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var queries = TestData.Integers(5, 8, 2);
        queries[(3 * 8) + 2] = bad;
        queries[(4 * 8) + 2] = bad;

        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", queries, 3).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'queries' row 3", error.Message);
    }

    [Fact]
    public async Task CreateCollectionAsync_NonFiniteVector_NamesFirstBadRow()
    {
        var vectors = TestData.Integers(100, 8, 1);
        vectors[(42 * 8) + 7] = float.NaN;
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", vectors, 8).AsTask());
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'vectors' row 42", error.Message);
        Assert.Empty(Sut.Collections);
    }

    [Fact]
    public async Task CreateCollectionAsync_ZeroDimension_InvalidArgument()
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", new float[4], 0).AsTask());
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("dimension 0", error.Message);
    }

    [Fact]
    public async Task CreateCollectionAsync_BadShapesAndIds_InvalidArgument()
    {
        Assert.Contains("no rows", (await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", ReadOnlyMemory<float>.Empty, 4).AsTask())).Message);
        Assert.Contains("whole number", (await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", new float[10], 4).AsTask())).Message);
        Assert.Contains("'ids' has 2", (await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", new float[12], 4, new long[] { 1, 2 }).AsTask())).Message);
        Assert.Contains("repeats id 7", (await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", new float[12], 4, new long[] { 7, 8, 7 }).AsTask())).Message);
        Assert.Equal(TandemStatusCode.InvalidArgument, (await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("", new float[4], 4).AsTask())).Code);
    }

    [Fact]
    public async Task CreateCollectionAsync_TakenName_AlreadyExists()
    {
        await Sut.CreateCollectionAsync("c", new float[4], 4);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.CreateCollectionAsync("c", new float[4], 4).AsTask());
        Assert.Equal(TandemStatusCode.AlreadyExists, error.Code);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(4097)]
    public async Task TopKAsync_KOutOfRange_InvalidArgument(int k)
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", new float[8], k).AsTask());
        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'k' must be in [1, 4096]", error.Message);
    }

    [Fact]
    public async Task TopKAsync_UnknownMetric_InvalidArgument()
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", new float[8], 1, (SimilarityMetric)7).AsTask());
        Assert.Contains("'metric'", error.Message);
    }

    [Fact]
    public async Task TopKAsync_ZeroQueryUnderCosine_InvalidArgument()
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var queries = TestData.Integers(2, 8, 5);
        EnsureNonZeroRows(queries, 8);
        Array.Clear(queries, 8, 8);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", queries, 1, SimilarityMetric.Cosine).AsTask());
        Assert.Contains("row 1 has zero norm", error.Message);
    }

    [Fact]
    public async Task TopKAsync_UnknownOrDroppedCollection_NotFound()
    {
        var unknown = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("nope", new float[8], 1).AsTask());
        Assert.Equal(TandemStatusCode.NotFound, unknown.Code);

        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        Assert.True(Sut.DropCollection("c"));
        Assert.False(Sut.DropCollection("c"));
        var dropped = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", new float[8], 1).AsTask());
        Assert.Equal(TandemStatusCode.NotFound, dropped.Code);
    }

    [Fact]
    public async Task TopKAsync_CollectionDroppedWhileQueriesRun_EachCompletesOrFailsCleanly()
    {
        const int Dim = 64;
        var vectors = TestData.Gaussian(50_000, Dim, seed: 41);
        var queries = TestData.Gaussian(32, Dim, seed: 42);
        for (var round = 0; round < 3; round++)
        {
            await Sut.CreateCollectionAsync("hot", vectors, Dim);
            var calls = Enumerable.Range(0, 16).Select(_ => Task.Run(async () => await Sut.TopKAsync("hot", queries, 10))).ToArray();
            Sut.DropCollection("hot");
            foreach (var call in calls)
            {
                try
                {
                    var result = await call;
                    Assert.Equal(32 * 10, result.Ids.Length);
                }
                catch (TandemException e)
                {
                    Assert.Equal(TandemStatusCode.NotFound, e.Code);
                }
            }
        }
    }

    [Fact]
    public async Task TopKAsync_CancelledBeforeStart_Cancelled()
    {
        await Sut.CreateCollectionAsync("c", TestData.Integers(10, 8, 1), 8);
        var error = await Assert.ThrowsAsync<TandemException>(() => Sut.TopKAsync("c", new float[8], 1, cancellationToken: new CancellationToken(true)).AsTask());
        Assert.Equal(TandemStatusCode.Cancelled, error.Code);
    }

    [Fact]
    public async Task TopKAsync_CancelledWhileRunning_CompletesPromptlyWithCancelled()
    {
        const int Dim = 128;
        await Sut.CreateCollectionAsync("big", TestData.Gaussian(200_000, Dim, seed: 51), Dim);
        using var cts = new CancellationTokenSource();
        var call = Sut.TopKAsync("big", TestData.Gaussian(64, Dim, seed: 52), 10, cancellationToken: cts.Token).AsTask();
        cts.Cancel();

        try
        {
            await call;
        }
        catch (TandemException e)
        {
            // Either it finished before the flag was seen, or it stopped.
            Assert.Equal(TandemStatusCode.Cancelled, e.Code);
        }

        // The backend keeps serving afterwards.
        var after = await Sut.TopKAsync("big", TestData.Gaussian(1, Dim, seed: 53), 3);
        Assert.Equal(3, after.K);
    }

    private static void EnsureNonZeroRows(float[] values, int dim)
    {
        for (var r = 0; r < values.Length / dim; r++)
        {
            values[r * dim] = values[r * dim] == 0 ? 1 : values[r * dim];
        }
    }

    private static void AssertClose(double expected, float actual) =>
        Assert.True(Math.Abs(actual - expected) <= 1e-4 * Math.Max(1, Math.Abs(expected)), $"expected {expected}, got {actual}");
}

public sealed class ManagedTopKContractTests : TopKContractTests
{
    protected override BackendKind Backend => BackendKind.Managed;
}

public sealed class NativeTopKContractTests : TopKContractTests
{
    protected override BackendKind Backend => BackendKind.Native;
}

[Collection(RemoteWorkersCollection.Name)]
public sealed class RemoteTopKContractTests : TopKContractTests
{
    protected override BackendKind Backend => BackendKind.Remote;

    protected override void AddBackend(IServiceCollection services) => RemoteWorkersFixture.Current!.AddRemote(services);
}
