namespace Tandem.Server.Demo;

/// <summary>Seeded, reproducible demo data: unit vectors and option books.</summary>
internal static class DemoData
{
    /// <summary>Seed of the demo collection, so every run (and the HTTP benchmark's baseline) searches the same vectors.</summary>
    public const int CollectionSeed = 20261124;

    /// <summary><paramref name="count"/> random unit vectors of <paramref name="dimension"/> components, row-major.</summary>
    public static float[] UnitVectors(int count, int dimension, int seed) => UnitVectors(count, dimension, new Random(seed));

    /// <summary><paramref name="count"/> unit vectors drawn from <paramref name="random"/>; the HTTP benchmark's baseline shares it.</summary>
    public static float[] UnitVectors(int count, int dimension, Random random)
    {
        var values = new float[(long)count * dimension];
        for (var row = 0; row < count; row++)
        {
            var vector = values.AsSpan(row * dimension, dimension);
            var norm = 0.0;
            for (var i = 0; i < dimension; i++)
            {
                var value = (float)(random.NextDouble() * 2 - 1);
                vector[i] = value;
                norm += value * value;
            }

            var scale = (float)(1 / Math.Sqrt(Math.Max(norm, 1e-12)));
            for (var i = 0; i < dimension; i++)
            {
                vector[i] *= scale;
            }
        }

        return values;
    }
}
