using Tandem.Perf.Telemetry;

namespace Tandem.Perf.Tests;

public sealed class PrometheusTextTests
{
    private const string Before = """
        # TYPE tandem_queue_duration_seconds histogram
        tandem_queue_duration_seconds_bucket{kernel="similarity.topk",le="0.001"} 10
        tandem_queue_duration_seconds_bucket{kernel="similarity.topk",le="0.002"} 10
        tandem_queue_duration_seconds_bucket{kernel="similarity.topk",le="+Inf"} 10
        tandem_queue_duration_seconds_sum{kernel="similarity.topk"} 0.005
        tandem_queue_duration_seconds_count{kernel="similarity.topk"} 10
        tandem_queue_duration_seconds_bucket{kernel="hash.blake3",le="0.001"} 99
        tandem_batch_size_bucket{kernel="similarity.topk",le="1"} 4
        tandem_batch_size_bucket{kernel="similarity.topk",le="2"} 4
        tandem_batch_size_bucket{kernel="similarity.topk",le="4"} 4
        tandem_batch_size_bucket{kernel="similarity.topk",le="+Inf"} 4
        tandem_batch_size_sum{kernel="similarity.topk"} 4
        tandem_batch_size_count{kernel="similarity.topk"} 4
        """;

    private const string After = """
        tandem_queue_duration_seconds_bucket{kernel="similarity.topk",le="0.001"} 20
        tandem_queue_duration_seconds_bucket{kernel="similarity.topk",le="0.002"} 30
        tandem_queue_duration_seconds_bucket{kernel="similarity.topk",le="+Inf"} 30
        tandem_queue_duration_seconds_sum{kernel="similarity.topk"} 0.035
        tandem_queue_duration_seconds_count{kernel="similarity.topk"} 30
        tandem_queue_duration_seconds_bucket{kernel="hash.blake3",le="0.001"} 500
        tandem_batch_size_bucket{kernel="similarity.topk",le="1"} 6
        tandem_batch_size_bucket{kernel="similarity.topk",le="2"} 6
        tandem_batch_size_bucket{kernel="similarity.topk",le="4"} 9
        tandem_batch_size_bucket{kernel="similarity.topk",le="+Inf"} 9
        tandem_batch_size_sum{kernel="similarity.topk"} 16
        tandem_batch_size_count{kernel="similarity.topk"} 9
        """;

    [Fact]
    public void Difference_TwoScrapes_OnlyTheKernelsSeriesBetweenThem()
    {
        var queue = PrometheusText.Difference(PrometheusText.Parse(Before, "similarity.topk")[PrometheusText.Queue], PrometheusText.Parse(After, "similarity.topk")[PrometheusText.Queue]);

        Assert.Equal(20, queue.Count);
        Assert.Equal(0.030, queue.Sum, 9);
        Assert.Equal([10.0, 20, 20], queue.Buckets.Values);
    }

    [Fact]
    public void Quantile_InterpolatesInsideTheBucket()
    {
        var queue = PrometheusText.Difference(PrometheusText.Parse(Before, "similarity.topk")[PrometheusText.Queue], PrometheusText.Parse(After, "similarity.topk")[PrometheusText.Queue]);

        // Rank 10 of 20 is the last of the first bucket; rank 15 halfway through the second.
        Assert.Equal(0.001, PrometheusText.Quantile(0.5, queue), 9);
        Assert.Equal(0.0015, PrometheusText.Quantile(0.75, queue), 9);
        var stats = PrometheusText.Durations(queue)!;
        Assert.Equal(1.5, stats.MeanMs, 6);
        Assert.Equal(1.0, stats.P50Ms, 6);
    }

    [Fact]
    public void Quantile_InTheInfBucket_LastFiniteBound()
    {
        var histogram = new PromHistogram(new SortedDictionary<double, double> { [1] = 1, [double.PositiveInfinity] = 10 }, 50, 10);

        Assert.Equal(1, PrometheusText.Quantile(0.99, histogram));
    }

    [Fact]
    public void Quantile_Empty_NaN()
    {
        Assert.True(double.IsNaN(PrometheusText.Quantile(0.5, new PromHistogram([], 0, 0))));
        Assert.Null(PrometheusText.Durations(new PromHistogram([], 0, 0)));
    }

    [Fact]
    public void BatchBuckets_CountsBetweenBounds()
    {
        var batch = PrometheusText.Difference(PrometheusText.Parse(Before, "similarity.topk")[PrometheusText.Batch], PrometheusText.Parse(After, "similarity.topk")[PrometheusText.Batch]);

        var buckets = PrometheusText.BatchBuckets(batch);

        Assert.Equal([new BatchBucket(1, 1, 2), new BatchBucket(3, 4, 3)], buckets);
    }
}
