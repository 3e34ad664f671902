using System.Globalization;
using System.Text.RegularExpressions;

namespace Tandem.Perf.Telemetry;

/// <summary>
/// Tandem's histograms in a Prometheus text exposition (the server's
/// <c>/metrics</c>), summed over the series of one kernel; the difference of
/// two scrapes is what happened between them, and a quantile is
/// interpolated linearly inside its bucket, as PromQL's
/// <c>histogram_quantile</c> does.
/// </summary>
internal static partial class PrometheusText
{
    public const string Call = "tandem_call_duration_seconds";
    public const string Queue = "tandem_queue_duration_seconds";
    public const string Compute = "tandem_compute_duration_seconds";
    public const string Batch = "tandem_batch_size";

    private static readonly string[] Families = [Call, Queue, Compute, Batch];

    /// <summary>Each family's cumulative buckets (upper bound → count), sum and count, over the series labelled <c>kernel="…"</c>.</summary>
    public static Dictionary<string, PromHistogram> Parse(string text, string kernel)
    {
        var result = Families.ToDictionary(f => f, _ => new PromHistogram(new SortedDictionary<double, double>(), 0, 0), StringComparer.Ordinal);
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            var line = raw.Trim().ToString();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var match = LinePattern().Match(line);
            if (!match.Success)
            {
                continue;
            }

            var name = match.Groups[1].Value;
            var family = Families.FirstOrDefault(f => name.StartsWith(f + "_", StringComparison.Ordinal));
            if (family is null)
            {
                continue;
            }

            var labels = LabelPattern().Matches(match.Groups[2].Value).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);
            if (!labels.TryGetValue("kernel", out var series) || series != kernel ||
                !double.TryParse(match.Groups[3].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            var histogram = result[family];
            switch (name[(family.Length + 1)..])
            {
                case "bucket" when labels.TryGetValue("le", out var le):
                    var bound = le == "+Inf" ? double.PositiveInfinity : double.Parse(le, NumberStyles.Float, CultureInfo.InvariantCulture);
                    histogram.Buckets[bound] = histogram.Buckets.GetValueOrDefault(bound) + value;
                    break;
                case "sum":
                    result[family] = histogram with { Sum = histogram.Sum + value };
                    break;
                case "count":
                    result[family] = histogram with { Count = histogram.Count + value };
                    break;
            }
        }

        return result;
    }

    /// <summary>What <paramref name="after"/> holds beyond <paramref name="before"/>.</summary>
    public static PromHistogram Difference(PromHistogram before, PromHistogram after)
    {
        var buckets = new SortedDictionary<double, double>();
        foreach (var (bound, count) in after.Buckets)
        {
            buckets[bound] = count - before.Buckets.GetValueOrDefault(bound);
        }

        return new PromHistogram(buckets, after.Sum - before.Sum, after.Count - before.Count);
    }

    /// <summary>
    /// The <paramref name="q"/> quantile (0 to 1): linear inside the bucket
    /// holding rank q × count; the last finite bound when the rank falls in
    /// +Inf; NaN when the histogram is empty.
    /// </summary>
    public static double Quantile(double q, PromHistogram histogram)
    {
        var total = histogram.Buckets.TryGetValue(double.PositiveInfinity, out var all) ? all : histogram.Count;
        if (histogram.Buckets.Count == 0 || total <= 0)
        {
            return double.NaN;
        }

        var rank = q * total;
        double lower = 0, below = 0;
        foreach (var (bound, cumulative) in histogram.Buckets)
        {
            if (cumulative >= rank)
            {
                if (double.IsPositiveInfinity(bound))
                {
                    return lower;
                }

                return cumulative == below ? bound : lower + ((bound - lower) * (rank - below) / (cumulative - below));
            }

            (lower, below) = (bound, cumulative);
        }

        return lower;
    }

    /// <summary>The duration figures of a seconds histogram, in milliseconds; null when empty.</summary>
    public static DurationStats? Durations(PromHistogram histogram) => histogram.Count <= 0
        ? null
        : new DurationStats((long)histogram.Count, histogram.Sum / histogram.Count * 1e3, Quantile(0.5, histogram) * 1e3, Quantile(0.9, histogram) * 1e3, Quantile(0.99, histogram) * 1e3);

    /// <summary>Batches per bucket (previous bound + 1 to bound) of a rows histogram.</summary>
    public static IReadOnlyList<BatchBucket> BatchBuckets(PromHistogram histogram)
    {
        var buckets = new List<BatchBucket>();
        double lower = 0, below = 0;
        foreach (var (bound, cumulative) in histogram.Buckets)
        {
            var count = (long)Math.Round(cumulative - below);
            if (count > 0)
            {
                var high = double.IsPositiveInfinity(bound) ? long.MaxValue : (long)Math.Floor(bound);
                buckets.Add(new BatchBucket((long)Math.Floor(lower) + 1, high, count));
            }

            (lower, below) = (bound, cumulative);
        }

        return buckets;
    }

    [GeneratedRegex(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")]
    private static partial Regex LinePattern();

    [GeneratedRegex("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"")]
    private static partial Regex LabelPattern();
}

/// <summary>A Prometheus histogram: cumulative counts by upper bound, sum and count.</summary>
internal sealed record PromHistogram(SortedDictionary<double, double> Buckets, double Sum, double Count);

/// <summary>The server's <c>/metrics</c>, scraped when a step's window opens and when it closes.</summary>
internal sealed class PrometheusScrape(HttpClient http, string kernel) : IServerTelemetry
{
    private Dictionary<string, PromHistogram>? _before;

    public string Source => "prometheus";

    public async Task BeginAsync(CancellationToken cancellationToken) => _before = await ScrapeAsync(cancellationToken).ConfigureAwait(false);

    public async Task<ServerStats?> EndAsync(CancellationToken cancellationToken)
    {
        var after = await ScrapeAsync(cancellationToken).ConfigureAwait(false);
        if (_before is null || after is null)
        {
            return null;
        }

        PromHistogram Diff(string family) => PrometheusText.Difference(_before[family], after[family]);
        var batch = Diff(PrometheusText.Batch);
        return new ServerStats(
            Source,
            PrometheusText.Durations(Diff(PrometheusText.Call)),
            PrometheusText.Durations(Diff(PrometheusText.Queue)),
            PrometheusText.Durations(Diff(PrometheusText.Compute)),
            (long)batch.Count,
            batch.Count > 0 ? batch.Sum / batch.Count : null,
            PrometheusText.BatchBuckets(batch));
    }

    private async Task<Dictionary<string, PromHistogram>?> ScrapeAsync(CancellationToken cancellationToken)
    {
        try
        {
            var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative), cancellationToken).ConfigureAwait(false);
            return PrometheusText.Parse(text, kernel);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }
}
