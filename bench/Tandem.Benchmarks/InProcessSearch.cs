using Tandem.Server.Demo;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// The in-process baseline of bench/http/run.sh: the demo collection's shape
/// (100,000 seeded random unit vectors of dimension 128), single random unit
/// queries, k = 10, dot product, from 64 concurrent async callers for a fixed
/// time, on the dispatcher the server builds (the same options: defaults plus
/// native hot swap). Prints throughput and latency percentiles and writes
/// Tandem's duration histograms in Prometheus text format, with the same
/// bucket bounds the server exports, so bench/http/breakdown.py reads both.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- inprocess-search [seconds] [warm-up seconds] [metrics file]
/// </summary>
internal static class InProcessSearch
{
    private const int Vectors = 100_000;
    private const int Dimension = 128;
    private const int Callers = 64;
    private const int QueryPool = 256;

    public static async Task RunAsync(string[] args)
    {
        var seconds = args.Length > 1 ? double.Parse(args[1], CultureInfo.InvariantCulture) : 20;
        var warmUp = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 5;
        var metricsPath = args.Length > 3 ? args[3] : null;

        var vectors = DemoData.UnitVectors(Vectors, Dimension, DemoData.CollectionSeed);
        var queryRandom = new Random(7);
        var queries = Enumerable.Range(0, QueryPool).Select(_ => DemoData.UnitVectors(1, Dimension, queryRandom)).ToArray();

        await using var services = new ServiceCollection().AddTandem(o => o.NativeHotSwap = true).BuildServiceProvider();
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("demo", vectors, Dimension);
        await search.TopKAsync("demo", queries[0], 10, SimilarityMetric.Dot);
        Console.WriteLine($"inprocess-search: similarity.topk, n = {Vectors:N0}, dim = {Dimension}, one query per call, k = 10, dot, {Callers} concurrent callers, default TandemOptions (Native, batching on), {Environment.ProcessorCount} cores");

        using var histograms = new DurationHistograms();
        await RunForAsync(search, queries, TimeSpan.FromSeconds(warmUp));
        histograms.Measuring = true;
        var (elapsed, latencies, failures) = await RunForAsync(search, queries, TimeSpan.FromSeconds(seconds));
        histograms.Measuring = false;

        Array.Sort(latencies);
        Console.WriteLine($"measured {seconds:F0} s after {warmUp:F0} s warm-up: {latencies.Length} calls, {failures} failed, {latencies.Length / elapsed.TotalSeconds:F0} requests/s");
        Console.WriteLine($"caller latency (ms): p50 {Percentile(latencies, 0.5):F3} p90 {Percentile(latencies, 0.9):F3} p99 {Percentile(latencies, 0.99):F3} max {latencies[^1]:F3}");
        if (metricsPath is not null)
        {
            File.WriteAllText(metricsPath, histograms.ToPrometheusText(latencies.Length / elapsed.TotalSeconds));
        }
    }

    private static async Task<(TimeSpan Elapsed, double[] LatenciesMs, long Failures)> RunForAsync(ISimilaritySearch search, float[][] queries, TimeSpan duration)
    {
        var perCaller = new List<double>[Callers];
        long failures = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(c => Task.Run(async () =>
        {
            var latencies = perCaller[c] = new List<double>(1 << 14);
            for (var i = c; clock.Elapsed < duration; i++)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await search.TopKAsync("demo", queries[i % queries.Length], 10, SimilarityMetric.Dot);
                    latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
                catch (TandemException)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })));
        var elapsed = clock.Elapsed;
        return (elapsed, perCaller.SelectMany(l => l).ToArray(), failures);
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];

    /// <summary>Tandem's call, queue and compute durations and batch sizes while <see cref="Measuring"/>, bucketed by each instrument's advised bounds.</summary>
    private sealed class DurationHistograms : IDisposable
    {
        private static readonly Dictionary<string, string> Exported = new()
        {
            [TandemTelemetryNames.CallDuration] = "tandem_call_duration_seconds",
            [TandemTelemetryNames.QueueDuration] = "tandem_queue_duration_seconds",
            [TandemTelemetryNames.ComputeDuration] = "tandem_compute_duration_seconds",
            [TandemTelemetryNames.BatchSize] = "tandem_batch_size",
        };

        private static readonly double[] BatchBounds = [1, 2, 4, 8, 16, 32, 64, 128];

        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, (double[] Bounds, long[] Counts, double[] Sum)> _histograms = [];
        private volatile bool _measuring;

        public DurationHistograms()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name != TandemTelemetryNames.Source || !Exported.ContainsKey(instrument.Name))
                {
                    return;
                }

                var bounds = instrument is Histogram<double> { Advice.HistogramBucketBoundaries: { } advised } ? advised.ToArray() : BatchBounds;
                lock (_histograms)
                {
                    _histograms[instrument.Name] = (bounds, new long[bounds.Length + 1], new double[1]);
                }

                listener.EnableMeasurementEvents(instrument, _histograms[instrument.Name]);
            };
            _listener.SetMeasurementEventCallback<double>((_, value, _, state) => Record(state, value));
            _listener.SetMeasurementEventCallback<long>((_, value, _, state) => Record(state, value));
            _listener.Start();
        }

        public bool Measuring
        {
            get => _measuring;
            set => _measuring = value;
        }

        public string ToPrometheusText(double requestsPerSecond)
        {
            var text = new StringBuilder();
            text.Append(CultureInfo.InvariantCulture, $"# in-process baseline, {requestsPerSecond:F1} requests/s\n");
            lock (_histograms)
            {
                foreach (var (instrument, (bounds, counts, sum)) in _histograms)
                {
                    var name = Exported[instrument];
                    long cumulative = 0;
                    for (var i = 0; i < bounds.Length; i++)
                    {
                        cumulative += Interlocked.Read(ref counts[i]);
                        text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"{bounds[i]}\"}} {cumulative}\n");
                    }

                    cumulative += Interlocked.Read(ref counts[^1]);
                    text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{le=\"+Inf\"}} {cumulative}\n");
                    text.Append(CultureInfo.InvariantCulture, $"{name}_sum {sum[0]}\n");
                    text.Append(CultureInfo.InvariantCulture, $"{name}_count {cumulative}\n");
                }
            }

            return text.ToString();
        }

        private void Record(object? state, double value)
        {
            if (!_measuring || state is not ValueTuple<double[], long[], double[]> histogram)
            {
                return;
            }

            var (bounds, counts, sum) = histogram;
            var bucket = Array.BinarySearch(bounds, value);
            // Prometheus buckets are upper-inclusive: an exact bound belongs to its own bucket.
            Interlocked.Increment(ref counts[bucket >= 0 ? bucket : ~bucket]);
            lock (sum)
            {
                sum[0] += value;
            }
        }

        public void Dispose() => _listener.Dispose();
    }
}
