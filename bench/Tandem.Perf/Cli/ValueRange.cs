using System.Globalization;

namespace Tandem.Perf.Cli;

/// <summary>
/// Where the elements of one input are drawn from (<c>--values NAME=LOW:HIGH[:int]</c>),
/// uniformly; <see cref="Whole"/> rounds to whole numbers. Several ranges
/// separated by ',' apply to the columns of the last axis in turn
/// (<c>options=90:110,90:110,0:0.05,0.1:0.4,0.25:2,0:1:int</c>).
/// </summary>
internal readonly record struct ValueRange(double Low, double High, bool Whole)
{
    /// <summary>Parses the ranges after '='.</summary>
    /// <exception cref="UsageException">A range is malformed or empty.</exception>
    public static ValueRange[] ParseList(string name, string text)
    {
        var ranges = text.Split(',');
        var parsed = new ValueRange[ranges.Length];
        for (var i = 0; i < ranges.Length; i++)
        {
            var parts = ranges[i].Split(':');
            if (parts.Length is < 2 or > 3 || (parts.Length == 3 && parts[2] != "int"))
            {
                throw Bad(name, ranges[i], "use LOW:HIGH or LOW:HIGH:int");
            }

            var low = Number(name, ranges[i], parts[0]);
            var high = Number(name, ranges[i], parts[1]);
            if (high < low)
            {
                throw Bad(name, ranges[i], $"HIGH {parts[1]} is below LOW {parts[0]}");
            }

            parsed[i] = new ValueRange(low, high, parts.Length == 3);
            if (parsed[i].Whole && Math.Floor(high) < Math.Ceiling(low))
            {
                throw Bad(name, ranges[i], "no whole number lies in the range");
            }
        }

        return parsed;
    }

    /// <summary>One value from the range.</summary>
    public double Draw(Random random)
    {
        if (Whole)
        {
            var low = (long)Math.Ceiling(Low);
            return random.NextInt64(low, (long)Math.Floor(High) + 1);
        }

        return Low + (random.NextDouble() * (High - Low));
    }

    private static double Number(string name, string range, string part) =>
        double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : throw Bad(name, range, $"'{part}' is not a number");

    private static UsageException Bad(string name, string range, string why) => new($"--values {name}={range}: {why}");
}
