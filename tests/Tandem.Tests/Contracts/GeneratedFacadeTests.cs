using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Internal.Contracts;
using Tandem.Kernels;
using Tandem.Pricing;
using Tandem.Similarity;

namespace Tandem.Tests.Contracts;

/// <summary>
/// The typed facades tandem-generate writes (the reference ones, committed in
/// ReferenceKernels.g.cs) against the hand-written facades, on each
/// in-process backend, and their refusals.
/// </summary>
public sealed class GeneratedFacadeTests
{
    [Theory]
    [InlineData(BackendKind.Managed, SimilarityMetric.Dot)]
    [InlineData(BackendKind.Managed, SimilarityMetric.Cosine)]
    [InlineData(BackendKind.Native, SimilarityMetric.Dot)]
    [InlineData(BackendKind.Native, SimilarityMetric.L2)]
    public async Task SimilarityTopk_SameCollection_MatchesISimilaritySearch(BackendKind backend, SimilarityMetric metric)
    {
        using var services = CreateSut(backend);
        var random = new Random(3);
        var vectors = Gaussian(random, 200 * 16);
        var queries = Gaussian(random, 3 * 16);
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("c", vectors, 16);
        using var collection = await services.GetRequiredService<VectorCollectionStateKind>().CreateAsync(vectors, dim: 16);

        var expected = await search.TopKAsync("c", queries, 7, metric);
        var result = await services.GetRequiredService<SimilarityTopkKernel>().InvokeAsync(collection, queries, dim: 16, k: 7, metric: (ReferenceKernels.SimilarityTopk.Params.Metric)metric);

        Assert.Equal(backend, result.Backend);
        Assert.Equal(3, result.Batch);
        Assert.Equal(7, result.K);
        Assert.Equal(expected.Ids, result.Ids.ToArray());
        Assert.Equal(expected.Scores, result.Scores.ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task SimilarityTopk_GivenIds_ReturnsThem(BackendKind backend)
    {
        using var services = CreateSut(backend);
        var vectors = new float[] { 1, 0, 0, 1, 0.5f, 0.5f };
        using var collection = await services.GetRequiredService<VectorCollectionStateKind>().CreateAsync(vectors, dim: 2, ids: new long[] { 10, 20, 30 });

        var result = await services.GetRequiredService<SimilarityTopkKernel>().InvokeAsync(collection, new float[] { 0, 1 }, dim: 2, k: 2);

        Assert.Equal(new long[] { 20, 30 }, result.Ids.ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed)]
    [InlineData(BackendKind.Native)]
    public async Task MontecarloEuropean_SameOptions_MatchesIOptionPricingBitForBit(BackendKind backend)
    {
        using var services = CreateSut(backend);
        EuropeanOption[] options = [new(100, 95, 0.01, 0.2, 1, OptionKind.Call), new(50, 60, 0.02, 0.3, 0.5, OptionKind.Put)];
        var rows = new double[] { 100, 95, 0.01, 0.2, 1, 1, 50, 60, 0.02, 0.3, 0.5, 0 };

        var expected = await services.GetRequiredService<IOptionPricing>().PriceEuropeanAsync(options, new MonteCarloSettings { Paths = 4096, Seed = 11, Antithetic = true });
        var result = await services.GetRequiredService<MontecarloEuropeanKernel>().InvokeAsync(rows, new long[] { 0, 1 }, paths: 4096, seed: 11, antithetic: true);

        Assert.Equal(backend, result.Backend);
        Assert.Equal(2, result.Batch);
        Assert.Equal(expected.Prices, result.Price.ToArray());
        Assert.Equal(expected.StandardErrors, result.Stderr.ToArray());
    }

    [Theory]
    [InlineData(BackendKind.Managed, 32)]
    [InlineData(BackendKind.Native, 32)]
    [InlineData(BackendKind.Native, 100)]
    public async Task HashBlake3_SameData_MatchesIBlake3Hashing(BackendKind backend, int length)
    {
        using var services = CreateSut(backend);
        var data = new byte[5000];
        new Random(9).NextBytes(data);
        var sut = services.GetRequiredService<HashBlake3Kernel>();

        var expected = await services.GetRequiredService<IBlake3Hashing>().HashAsync(data, length);
        var result = await sut.InvokeAsync(data, outputLen: length);
        await using var stream = await sut.OpenAsync();
        await stream.AppendAsync(data.AsMemory(0, 1234));
        await stream.AppendAsync(data.AsMemory(1234));
        var streamed = new byte[length];
        await stream.FinalizeAsync(streamed);

        Assert.Equal(length, result.OutputLen);
        Assert.Equal(expected, result.Digest.ToArray());
        Assert.Equal(expected, streamed);
    }

    [Theory]
    [InlineData(0L, "parameter 'k'")]
    [InlineData(5000L, "parameter 'k'")]
    public async Task SimilarityTopk_KOutOfRange_InvalidArgumentNamingTheParameter(long k, string named)
    {
        using var services = CreateSut(BackendKind.Native);
        using var collection = await services.GetRequiredService<VectorCollectionStateKind>().CreateAsync(new float[] { 1, 0, 0, 1 }, dim: 2);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<SimilarityTopkKernel>().InvokeAsync(collection, new float[] { 1, 0 }, dim: 2, k: k, kSize: 1).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public async Task MontecarloEuropean_PathsOutOfRange_InvalidArgumentNamingTheParameter()
    {
        using var services = CreateSut(BackendKind.Managed);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<MontecarloEuropeanKernel>().InvokeAsync(new double[] { 100, 95, 0.01, 0.2, 1, 1 }, new long[] { 0 }, paths: 0).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("parameter 'paths'", error.Message);
    }

    [Fact]
    public async Task SimilarityTopk_QueriesNotWholeRows_InvalidArgumentNamingTheTensor()
    {
        using var services = CreateSut(BackendKind.Managed);
        using var collection = await services.GetRequiredService<VectorCollectionStateKind>().CreateAsync(new float[] { 1, 0, 0, 1 }, dim: 2);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<SimilarityTopkKernel>().InvokeAsync(collection, new float[] { 1, 0, 1 }, dim: 2, k: 1).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("tensor 'queries'", error.Message);
    }

    [Fact]
    public async Task HashBlake3_OutputLenOutOfRange_InvalidArgumentNamingTheSymbol()
    {
        using var services = CreateSut(BackendKind.Managed);

        var error = await Assert.ThrowsAsync<TandemException>(() => services.GetRequiredService<HashBlake3Kernel>().InvokeAsync(new byte[] { 1 }, outputLen: (1 << 20) + 1).AsTask());

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("output symbol 'output_len'", error.Message);
    }

    private static ServiceProvider CreateSut(BackendKind backend) => new ServiceCollection()
        .AddTandem(o =>
        {
            o.Backend = backend;
            o.FallbackToManaged = false;
            o.HashManagedBelowBytes = 0;
        })
        .AddReferenceKernels()
        .BuildServiceProvider();

    private static float[] Gaussian(Random random, int count)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }

        return values;
    }
}
