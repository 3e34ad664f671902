using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tandem.Soak;

/// <summary>Every process of this run: the driver and each worker pid ever seen, with its slot name.</summary>
internal sealed class ProcessRegistry
{
    private readonly ConcurrentDictionary<int, string> _names = new();

    public void Add(int pid, string name) => _names.TryAdd(pid, name);

    public IReadOnlyDictionary<int, string> All => _names;
}

/// <summary>RSS of one process through the run.</summary>
internal sealed class RssSeries(int pid, string name)
{
    public int ProcessId { get; } = pid;

    public string Name { get; } = name;

    /// <summary>RSS in bytes, one per sample.</summary>
    public List<long> Samples { get; } = [];

    /// <summary>When each sample was taken (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public List<long> Times { get; } = [];

    public long Peak => Samples.Count == 0 ? 0 : Samples.Max();

    /// <summary>The samples taken from <paramref name="since"/> on.</summary>
    public List<long> Steady(long since) => [.. Samples.Where((_, i) => Times[i] >= since)];

    /// <summary>Median of the first and of the last quarter of the samples taken from <paramref name="since"/> on (of all, when fewer than 8 are that late).</summary>
    public (long First, long Last) QuarterMedians(long since)
    {
        var samples = Steady(since);
        samples = samples.Count >= 8 ? samples : Samples;
        var quarter = Math.Max(1, samples.Count / 4);
        return (Median(samples.Take(quarter)), Median(samples.Skip(samples.Count - quarter)));
    }

    private static long Median(IEnumerable<long> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }
}

/// <summary>
/// Samples VmRSS of the driver and of every worker the pool reports at a
/// fixed interval, so the report can say whether memory stayed flat.
/// </summary>
internal sealed class RssSampler(SoakSettings settings, Target remote, ProcessRegistry processes)
{
    private readonly ConcurrentDictionary<int, RssSeries> _series = new();

    private long _started;
    private long _stopped;

    /// <summary>
    /// Memory grows while the heaps and pools reach their working size: the
    /// flatness check starts after 10 s or a tenth of the run, whichever is longer.
    /// </summary>
    public long SteadyFrom => _started + Math.Max(10 * Stopwatch.Frequency, (_stopped - _started) / 10);

    public IReadOnlyCollection<RssSeries> Series => [.. _series.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ThenBy(s => s.ProcessId)];

    public async Task RunAsync(CancellationToken stop)
    {
        var self = Environment.ProcessId;
        _started = Stopwatch.GetTimestamp();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(settings.RssSampleMs));
        try
        {
            do
            {
                Sample(self, "driver");
                foreach (var worker in remote.Pool!.Workers)
                {
                    if (worker.ProcessId is { } pid)
                    {
                        processes.Add(pid, worker.Name);
                        Sample(pid, worker.Name);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(stop));
        }
        catch (OperationCanceledException)
        {
        }

        _stopped = Stopwatch.GetTimestamp();
    }

    private void Sample(int pid, string name)
    {
        if (Posix.ResidentBytes(pid) is { } bytes)
        {
            var series = _series.GetOrAdd(pid, p => new RssSeries(p, name));
            lock (series)
            {
                series.Samples.Add(bytes);
                series.Times.Add(Stopwatch.GetTimestamp());
            }
        }
    }

    /// <summary>
    /// Flatness failures: a process sampled at least 8 times after the
    /// warm-up (<see cref="SteadyFrom"/>) whose last-quarter median exceeds
    /// its first-quarter median × factor + slack.
    /// </summary>
    public IEnumerable<string> Growth()
    {
        foreach (var series in Series)
        {
            if (series.Steady(SteadyFrom).Count < 8)
            {
                continue;
            }

            var (first, last) = series.QuarterMedians(SteadyFrom);
            var limit = (first * settings.RssFactor) + (settings.RssSlackMiB * 1024 * 1024);
            if (last > limit)
            {
                yield return $"RSS of {series.Name} (pid {series.ProcessId}) grew: last-quarter median {Mib(last)} MiB > {settings.RssFactor} × first-quarter median {Mib(first)} MiB + {settings.RssSlackMiB} MiB";
            }
        }
    }

    public static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
}
