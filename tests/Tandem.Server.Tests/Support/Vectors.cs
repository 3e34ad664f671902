namespace Tandem.Server.Tests.Support;

/// <summary>Seeded test vectors and the brute-force top-k the server's answers are checked against.</summary>
internal static class Vectors
{
    public static float[][] Random(int count, int dimension, int seed)
    {
        var random = new Random(seed);
        var rows = new float[count][];
        for (var i = 0; i < count; i++)
        {
            rows[i] = new float[dimension];
            for (var j = 0; j < dimension; j++)
            {
                rows[i][j] = (float)((random.NextDouble() * 2) - 1);
            }
        }

        return rows;
    }

    /// <summary>Raw little-endian f32 bytes of the rows, row-major.</summary>
    public static byte[] RawF32(float[][] rows) => Npy.Data(rows, isDouble: false);

    /// <summary>The score of <paramref name="row"/> for <paramref name="query"/>: dot, cosine, or squared L2 distance.</summary>
    public static double Score(string metric, float[] query, float[] row)
    {
        double dot = 0, queryNorm = 0, rowNorm = 0;
        for (var i = 0; i < query.Length; i++)
        {
            dot += (double)query[i] * row[i];
            queryNorm += (double)query[i] * query[i];
            rowNorm += (double)row[i] * row[i];
        }

        return metric switch
        {
            "dot" => dot,
            "cosine" => dot / Math.Sqrt(queryNorm * rowNorm),
            "l2" => Math.Max(queryNorm + rowNorm - (2 * dot), 0),
            _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, null),
        };
    }

    /// <summary>The best <paramref name="k"/> scores by brute force (highest first; lowest first for l2).</summary>
    public static double[] TopScores(string metric, float[] query, float[][] rows, int k)
    {
        var scores = rows.Select(row => Score(metric, query, row));
        return [.. (metric == "l2" ? scores.Order() : scores.OrderDescending()).Take(k)];
    }
}
