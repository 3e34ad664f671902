using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Pricing;
using Tandem.Similarity;

namespace Tandem.Soak;

/// <summary>The kinds of call the soak makes.</summary>
internal enum CallKind
{
    TopK = 0,
    Price = 1,
    Hash = 2,
    HashStream = 3,
}

/// <summary>
/// Seeded inputs for the three reference kernels and, for each, the result
/// the Managed twin gives: the reference every successful soak call is
/// checked against.
/// </summary>
internal sealed class Workload
{
    public const string Collection = "soak";
    public const int Dimension = 32;
    public const int CollectionRows = 4096;
    private const int CasesPerKind = 256;

    private Workload(float[] vectors, TopKCase[] topK, PriceCase[] prices, HashCase[] hashes)
    {
        Vectors = vectors;
        TopK = topK;
        Prices = prices;
        Hashes = hashes;
    }

    /// <summary>The collection every top-k call searches: small integers, so every backend's f32 sums are exact.</summary>
    public float[] Vectors { get; }

    public TopKCase[] TopK { get; }

    public PriceCase[] Prices { get; }

    public HashCase[] Hashes { get; }

    public static async Task<Workload> CreateAsync(int seed)
    {
        var random = new Random(seed);
        var vectors = Integers(random, CollectionRows * Dimension);
        var topK = new TopKCase[CasesPerKind];
        var prices = new PriceCase[CasesPerKind];
        var hashes = new HashCase[CasesPerKind];

        await using var managed = new ServiceCollection().AddTandem(o => o.Backend = BackendKind.Managed).BuildServiceProvider();
        var search = managed.GetRequiredService<ISimilaritySearch>();
        var pricing = managed.GetRequiredService<IOptionPricing>();
        var hashing = managed.GetRequiredService<IBlake3Hashing>();
        await search.CreateCollectionAsync(Collection, vectors, Dimension);

        for (var i = 0; i < CasesPerKind; i++)
        {
            var rows = 1 + random.Next(4);
            var queries = Integers(random, rows * Dimension);
            var k = 1 + random.Next(16);
            // Cosine divides by norms; dot and L2 of small integers are exact on every path.
            var metric = random.Next(2) == 0 ? SimilarityMetric.Dot : SimilarityMetric.L2;
            var expected = await search.TopKAsync(Collection, queries, k, metric);
            topK[i] = new TopKCase(queries, k, metric, expected.Ids, expected.Scores);

            var options = new EuropeanOption[1 + random.Next(4)];
            for (var row = 0; row < options.Length; row++)
            {
                options[row] = new EuropeanOption(
                    Spot: 80 + (40 * random.NextDouble()),
                    Strike: 80 + (40 * random.NextDouble()),
                    Rate: 0.05 * random.NextDouble(),
                    Volatility: 0.1 + (0.4 * random.NextDouble()),
                    Maturity: 0.25 + (1.75 * random.NextDouble()),
                    Kind: random.Next(2) == 0 ? OptionKind.Call : OptionKind.Put);
            }

            var settings = new MonteCarloSettings { Paths = 256 << random.Next(3), Seed = (ulong)random.NextInt64(), Antithetic = random.Next(2) == 0 };
            var priced = await pricing.PriceEuropeanAsync(options, settings);
            prices[i] = new PriceCase(options, settings, priced.Prices, priced.StandardErrors);

            // Mostly small messages, some above the 64 KiB shared-memory threshold.
            var length = random.Next(10) switch
            {
                < 6 => 1 + random.Next(4096),
                < 9 => 4096 + random.Next(60 * 1024),
                _ => (64 * 1024) + random.Next(448 * 1024),
            };
            var data = new byte[length];
            random.NextBytes(data);
            var outputLength = random.Next(4) == 0 ? 64 : 32;
            hashes[i] = new HashCase(data, outputLength, hashing.Hash(data, outputLength), 1 + random.Next(4));
        }

        search.DropCollection(Collection);
        return new Workload(vectors, topK, prices, hashes);
    }

    private static float[] Integers(Random random, int count)
    {
        var values = new float[count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = random.Next(-8, 9);
        }

        return values;
    }
}

internal sealed record TopKCase(float[] Queries, int K, SimilarityMetric Metric, long[] Ids, float[] Scores);

internal sealed record PriceCase(EuropeanOption[] Options, MonteCarloSettings Settings, double[] Prices, double[] StandardErrors);

/// <summary>A message, its expected digest, and how many chunks a streamed hash of it appends.</summary>
internal sealed record HashCase(byte[] Data, int OutputLength, byte[] Digest, int Chunks);
