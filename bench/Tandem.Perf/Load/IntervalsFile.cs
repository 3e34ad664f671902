using System.Globalization;
using Tandem.Perf.Cli;

namespace Tandem.Perf.Load;

/// <summary>
/// A request-intervals file (perf_analyzer's <c>--request-intervals</c>):
/// one interval in microseconds per line, the time from one request's send
/// to the next one's. Blank lines and lines starting with '#' are skipped.
/// </summary>
internal static class IntervalsFile
{
    /// <summary>Most intervals a file may hold (it is replayed in a loop, so a longer one adds nothing but memory).</summary>
    public const int MaxIntervals = 1_000_000;

    /// <summary>Longest single interval: one hour.</summary>
    public const double MaxIntervalMicroseconds = 3_600_000_000;

    /// <summary>Reads the intervals of <paramref name="path"/>, in microseconds.</summary>
    /// <exception cref="UsageException">The file is missing, empty, too long, or a line is not an interval (the message names the line).</exception>
    public static double[] Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"--request-intervals: file '{path}' does not exist");
        }

        using var reader = new StreamReader(path);
        return Parse(reader, path);
    }

    /// <summary>Parses intervals from <paramref name="reader"/>; <paramref name="name"/> names the source in messages.</summary>
    public static double[] Parse(TextReader reader, string name)
    {
        var intervals = new List<double>();
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            var text = line.Trim();
            if (text.Length == 0 || text.StartsWith('#'))
            {
                continue;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var micros) || !double.IsFinite(micros))
            {
                throw new UsageException($"--request-intervals: {name} line {lineNumber}: '{Shorten(text)}' is not a number of microseconds");
            }

            if (micros is < 0 or > MaxIntervalMicroseconds)
            {
                throw new UsageException($"--request-intervals: {name} line {lineNumber}: {text} µs is outside 0 to {MaxIntervalMicroseconds:0} (one hour)");
            }

            if (intervals.Count == MaxIntervals)
            {
                throw new UsageException($"--request-intervals: {name} line {lineNumber}: the file holds more than {MaxIntervals:N0} intervals");
            }

            intervals.Add(micros);
        }

        if (intervals.Count == 0)
        {
            throw new UsageException($"--request-intervals: {name} holds no interval; write one interval in microseconds per line");
        }

        if (intervals.Sum() <= 0)
        {
            throw new UsageException($"--request-intervals: every interval in {name} is 0; at least one must be positive");
        }

        return [.. intervals];
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
