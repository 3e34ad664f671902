using System.Globalization;
using Tandem.Perf.Cli;

namespace Tandem.Perf.Load;

/// <summary>
/// The steps of a sweep, as perf_analyzer's <c>--concurrency-range</c>:
/// <c>START</c>, <c>START:END</c> (step 1), <c>START:END:STEP</c> (added) or
/// <c>START:END:xFACTOR</c> (multiplied). The end is always included, so
/// <c>1:48:x4</c> is 1, 4, 16, 48.
/// </summary>
internal static class StepRange
{
    /// <summary>Most steps one range may expand to.</summary>
    public const int MaxSteps = 64;

    /// <summary>Parses <paramref name="text"/> of option <paramref name="option"/>; every value is at least <paramref name="min"/>.</summary>
    /// <exception cref="UsageException">The text is not a range, a value is below the minimum, or the range is too long.</exception>
    public static IReadOnlyList<double> Parse(string option, string text, double min, bool integers)
    {
        var parts = text.Split(':');
        if (parts.Length > 3 || parts.Any(p => p.Length == 0))
        {
            throw Bad(option, text, "use START, START:END, START:END:STEP or START:END:xFACTOR");
        }

        var start = Number(option, text, parts[0], min, integers);
        var end = parts.Length > 1 ? Number(option, text, parts[1], min, integers) : start;
        if (end < start)
        {
            throw Bad(option, text, $"the end {Format(end)} is below the start {Format(start)}");
        }

        var multiply = parts.Length == 3 && parts[2].StartsWith('x');
        var step = parts.Length == 3 ? Number(option, text, multiply ? parts[2][1..] : parts[2], double.Epsilon, integers: false) : 1;
        if (multiply && step <= 1)
        {
            throw Bad(option, text, $"the factor x{parts[2][1..]} must be above 1");
        }

        var values = new List<double>();
        for (var value = start; value < end; value = multiply ? value * step : value + step)
        {
            values.Add(integers ? Math.Round(value) : value);
            if (values.Count >= MaxSteps)
            {
                throw Bad(option, text, $"it expands to more than {MaxSteps} steps");
            }
        }

        values.Add(end);
        return [.. values.Distinct()];
    }

    private static double Number(string option, string text, string part, double min, bool integers)
    {
        if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw Bad(option, text, $"'{part}' is not a number");
        }

        if (integers && value != Math.Floor(value))
        {
            throw Bad(option, text, $"'{part}' is not a whole number");
        }

        if (value < min)
        {
            throw Bad(option, text, $"{part} is below the minimum {Format(min)}");
        }

        return value;
    }

    private static string Format(double value) => value.ToString("G", CultureInfo.InvariantCulture);

    private static UsageException Bad(string option, string text, string why) => new($"{option} '{text}': {why}");
}
