namespace Tandem.Tests.Similarity;

/// <summary>Deterministic test vectors.</summary>
internal static class TestData
{
    /// <summary>Small integers in [-3, 3]: every dot product is exact in f32, so rankings have no rounding and ties are common.</summary>
    public static float[] Integers(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * dim];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = random.Next(-3, 4);
        }

        return values;
    }

    public static float[] Gaussian(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows * dim];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        }

        return values;
    }

    /// <summary>Brute force in f64 with the contract's definitions: (id, score) best first.</summary>
    public static (long Id, double Score)[] Reference(float[] values, int dim, ReadOnlySpan<float> query, Tandem.Similarity.SimilarityMetric metric, int k, long[]? ids = null)
    {
        var rows = values.Length / dim;
        double qq = 0;
        foreach (var v in query)
        {
            qq += (double)v * v;
        }

        var all = new (long Id, double Score)[rows];
        for (var r = 0; r < rows; r++)
        {
            double dot = 0, xx = 0;
            for (var d = 0; d < dim; d++)
            {
                dot += (double)values[(r * dim) + d] * query[d];
                xx += (double)values[(r * dim) + d] * values[(r * dim) + d];
            }

            var score = metric switch
            {
                Tandem.Similarity.SimilarityMetric.Dot => dot,
                Tandem.Similarity.SimilarityMetric.Cosine => xx == 0 ? 0 : dot / (Math.Sqrt(qq) * Math.Sqrt(xx)),
                _ => Math.Max(qq + xx - (2 * dot), 0),
            };
            all[r] = (ids?[r] ?? r, score);
        }

        var ascending = metric == Tandem.Similarity.SimilarityMetric.L2;
        Array.Sort(all, (a, b) =>
        {
            var byScore = ascending ? a.Score.CompareTo(b.Score) : b.Score.CompareTo(a.Score);
            return byScore != 0 ? byScore : a.Id.CompareTo(b.Id);
        });
        return all[..Math.Min(k, rows)];
    }
}
