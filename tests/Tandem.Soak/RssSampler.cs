using System.Collections.Concurrent;

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

    public List<long> Samples { get; } = [];

    public long Peak => Samples.Count == 0 ? 0 : Samples.Max();

    /// <summary>Median of the first and of the last quarter of the samples.</summary>
    public (long First, long Last) QuarterMedians()
    {
        var quarter = Math.Max(1, Samples.Count / 4);
        return (Median(Samples.Take(quarter)), Median(Samples.Skip(Samples.Count - quarter)));
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

    public IReadOnlyCollection<RssSeries> Series => [.. _series.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ThenBy(s => s.ProcessId)];

    public async Task RunAsync(CancellationToken stop)
    {
        var self = Environment.ProcessId;
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
    }

    private void Sample(int pid, string name)
    {
        if (Posix.ResidentBytes(pid) is { } bytes)
        {
            var series = _series.GetOrAdd(pid, p => new RssSeries(p, name));
            lock (series)
            {
                series.Samples.Add(bytes);
            }
        }
    }

    /// <summary>Flatness failures: a process sampled at least 8 times whose last-quarter median exceeds its first-quarter median × factor + slack.</summary>
    public IEnumerable<string> Growth()
    {
        foreach (var series in Series)
        {
            if (series.Samples.Count < 8)
            {
                continue;
            }

            var (first, last) = series.QuarterMedians();
            var limit = (first * settings.RssFactor) + (settings.RssSlackMiB * 1024 * 1024);
            if (last > limit)
            {
                yield return $"RSS of {series.Name} (pid {series.ProcessId}) grew: last-quarter median {Mib(last)} MiB > {settings.RssFactor} × first-quarter median {Mib(first)} MiB + {settings.RssSlackMiB} MiB";
            }
        }
    }

    public static string Mib(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
}
