using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tandem.Soak;

/// <summary>Latency percentiles of a set of calls, in milliseconds.</summary>
internal sealed record LatencySummary(long Calls, double P50Ms, double P99Ms, double MaxMs);

internal sealed record RssSummary(string Name, int ProcessId, int Samples, double FirstQuarterMedianMiB, double LastQuarterMedianMiB, double PeakMiB);

internal sealed record FaultSummary(string Kind, string Detail, double AtSeconds, double RecoverySeconds);

/// <summary>Everything a run measured; written as report.json and report.md.</summary>
internal sealed record SoakReport(
    bool Passed,
    string Command,
    string Cpu,
    int Seed,
    int Workers,
    int Concurrency,
    DateTimeOffset StartedAt,
    double DurationSeconds,
    long Calls,
    double CallsPerSecond,
    Dictionary<string, long> CallsByTarget,
    Dictionary<string, long> CallsByKind,
    Dictionary<string, long> Outcomes,
    Dictionary<string, long> OutcomesDuringFaults,
    Dictionary<string, long> ErrorsByCall,
    Dictionary<string, long> FaultsByKind,
    LatencySummary Latency,
    LatencySummary LatencyDuringFaults,
    LatencySummary LatencyOutsideFaults,
    List<RssSummary> Rss,
    List<double> DriverRssTimelineMiB,
    List<string> Leftovers,
    long FailureCount,
    List<string> Failures,
    List<FaultSummary> Faults)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Folds the ledger, the faults and the RSS samples into the report.</summary>
    public static SoakReport Build(SoakSettings settings, string command, DateTimeOffset startedAt, long runStarted, long runEnded, long taken, long issued, Ledger ledger, IReadOnlyList<Fault> faults, RssSampler rss, List<string> leftovers)
    {
        // A call is "during a fault" when it started between an injection and a quarter second after the pool was whole again.
        var tail = Stopwatch.Frequency / 4;
        var windows = faults.Select(f => (f.Started, End: f.Recovered + tail)).OrderBy(w => w.Started).ToArray();
        var all = new List<int>((int)Math.Min(issued, int.MaxValue));
        var during = new List<int>();
        var outside = new List<int>();
        var outcomes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var outcomesDuring = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byTarget = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byKind = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var errors = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (long id = 0; id < taken; id++)
        {
            if (!ledger.WasStarted(id))
            {
                continue;
            }

            var outcome = OutcomeName(ledger.Outcome(id));
            Add(outcomes, outcome);
            Add(byTarget, Program.TargetNames[ledger.TargetOf(id)]);
            Add(byKind, ledger.Kind(id).ToString());
            if (ledger.Outcome(id) != (byte)TandemStatusCode.Ok)
            {
                Add(errors, $"{outcome} ({ledger.Describe(id)})");
            }

            var latency = ledger.LatencyMicros(id);
            all.Add(latency);
            if (InAnyWindow(windows, ledger.StartedAt(id)))
            {
                during.Add(latency);
                Add(outcomesDuring, outcome);
            }
            else
            {
                outside.Add(latency);
            }
        }

        var duration = (runEnded - runStarted) / (double)Stopwatch.Frequency;
        var failures = ledger.Failures.ToList();
        return new SoakReport(
            Passed: ledger.FailureCount == 0,
            Command: command,
            Cpu: CpuName(),
            Seed: settings.Seed,
            Workers: settings.Workers,
            Concurrency: settings.Concurrency,
            StartedAt: startedAt,
            DurationSeconds: Math.Round(duration, 1),
            Calls: issued,
            CallsPerSecond: Math.Round(issued / Math.Max(duration, 1e-9)),
            CallsByTarget: new(byTarget),
            CallsByKind: new(byKind),
            Outcomes: new(outcomes),
            OutcomesDuringFaults: new(outcomesDuring),
            ErrorsByCall: new(errors),
            FaultsByKind: Enum.GetValues<FaultKind>().ToDictionary(k => k.ToString(), k => (long)faults.Count(f => f.Kind == k)),
            Latency: Summarize(all),
            LatencyDuringFaults: Summarize(during),
            LatencyOutsideFaults: Summarize(outside),
            Rss: [.. rss.Series.Select(s =>
            {
                var (first, last) = s.QuarterMedians(rss.SteadyFrom);
                return new RssSummary(s.Name, s.ProcessId, s.Samples.Count, Mib(first), Mib(last), Mib(s.Peak));
            })],
            DriverRssTimelineMiB: Timeline(rss.Series.FirstOrDefault(s => s.Name == "driver")),
            Leftovers: leftovers,
            FailureCount: ledger.FailureCount,
            Failures: failures,
            Faults: [.. faults.Select(f => new FaultSummary(f.Kind.ToString(), f.Detail, Math.Round((f.Started - runStarted) / (double)Stopwatch.Frequency, 2), Math.Round((f.Recovered - f.Started) / (double)Stopwatch.Frequency, 2)))]);
    }

    public void Write(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "report.json"), JsonSerializer.Serialize(this, Json));
        File.WriteAllText(Path.Combine(directory, "report.md"), Markdown());
    }

    /// <summary>The table docs/reliability.md shows.</summary>
    public string Markdown()
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(c, $"Fault soak, {(Passed ? "passed" : "FAILED")}: `{Command}` (seed {Seed}, {Workers} workers, {Concurrency} calls in flight), {StartedAt:yyyy-MM-dd}, {Cpu}.");
        text.AppendLine();
        text.AppendLine("| measure | value |");
        text.AppendLine("|---|---|");
        text.AppendLine(c, $"| calls | {Calls:N0} in {DurationSeconds:F0} s ({CallsPerSecond:N0}/s): {Join(CallsByTarget)}; {Join(CallsByKind)} |");
        text.AppendLine(c, $"| faults injected | {FaultsByKind.Values.Sum()}: {Join(FaultsByKind)} |");
        text.AppendLine(c, $"| outcomes | {Join(Outcomes)} |");
        text.AppendLine(c, $"| outcomes of calls started during a fault | {Join(OutcomesDuringFaults)} |");
        text.AppendLine(c, $"| errors by call | {(ErrorsByCall.Count == 0 ? "none" : Join(ErrorsByCall))} |");
        text.AppendLine(c, $"| latency, all calls | p50 {Latency.P50Ms:F2} ms, p99 {Latency.P99Ms:F2} ms, max {Latency.MaxMs:F0} ms |");
        text.AppendLine(c, $"| latency during faults ({LatencyDuringFaults.Calls:N0} calls) | p50 {LatencyDuringFaults.P50Ms:F2} ms, p99 {LatencyDuringFaults.P99Ms:F2} ms, max {LatencyDuringFaults.MaxMs:F0} ms |");
        text.AppendLine(c, $"| latency outside faults | p50 {LatencyOutsideFaults.P50Ms:F2} ms, p99 {LatencyOutsideFaults.P99Ms:F2} ms, max {LatencyOutsideFaults.MaxMs:F0} ms |");
        var driver = Rss.Where(r => r.Name == "driver").ToArray();
        var workers = Rss.Where(r => r.Name != "driver").ToArray();
        text.AppendLine(c, $"| peak RSS, driver (steady first → last quarter median) | {string.Join("; ", driver.Select(r => $"{r.PeakMiB:F0} MiB ({r.FirstQuarterMedianMiB:F0} → {r.LastQuarterMedianMiB:F0})"))} |");
        if (workers.Length > 0)
        {
            var longest = workers.OrderByDescending(r => r.Samples).First();
            text.AppendLine(c, $"| peak RSS, workers | {workers.Max(r => r.PeakMiB):F0} MiB over {workers.Length} worker processes; longest-lived {longest.Name} (pid {longest.ProcessId}) {longest.FirstQuarterMedianMiB:F0} → {longest.LastQuarterMedianMiB:F0} MiB |");
        }

        text.AppendLine(c, $"| left behind | {(Leftovers.Count == 0 ? "nothing (no worker process, socket, shared-memory file or temporary directory)" : string.Join("; ", Leftovers))} |");
        text.AppendLine(c, $"| accounting failures | {FailureCount} |");
        foreach (var failure in Failures)
        {
            text.AppendLine(c, $"\n- {failure}");
        }

        return text.ToString();
    }

    private static string Join(IDictionary<string, long> counts) =>
        string.Join(", ", counts.Where(kv => kv.Value > 0).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key} {kv.Value:N0}")));

    private static void Add(SortedDictionary<string, long> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;

    private static string OutcomeName(byte outcome) => outcome switch
    {
        Ledger.WrongResult => "WrongResult",
        Ledger.UnexpectedException => "UnexpectedException",
        Ledger.NeverEnded => "NeverEnded",
        _ => ((TandemStatusCode)outcome).ToString(),
    };

    private static bool InAnyWindow((long Started, long End)[] windows, long at)
    {
        // Faults run one at a time, so the windows are disjoint and sorted: look at the last one started before the call.
        int low = 0, high = windows.Length - 1, last = -1;
        while (low <= high)
        {
            var middle = (low + high) / 2;
            if (windows[middle].Started <= at)
            {
                last = middle;
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }

        return last >= 0 && at <= windows[last].End;
    }

    private static LatencySummary Summarize(List<int> micros)
    {
        if (micros.Count == 0)
        {
            return new LatencySummary(0, 0, 0, 0);
        }

        micros.Sort();
        double At(double q) => micros[(int)Math.Min(micros.Count - 1, Math.Floor(q * micros.Count))] / 1000.0;
        return new LatencySummary(micros.Count, Math.Round(At(0.50), 3), Math.Round(At(0.99), 3), Math.Round(micros[^1] / 1000.0, 1));
    }

    /// <summary>At most 100 evenly spaced samples of a series, to see the shape of its memory over the run.</summary>
    private static List<double> Timeline(RssSeries? series)
    {
        if (series is null || series.Samples.Count == 0)
        {
            return [];
        }

        var points = Math.Min(100, series.Samples.Count);
        return [.. Enumerable.Range(0, points).Select(i => Mib(series.Samples[(int)((long)i * (series.Samples.Count - 1) / Math.Max(1, points - 1))]))];
    }

    private static double Mib(long bytes) => Math.Round(bytes / (1024.0 * 1024.0), 1);

    private static string CpuName()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line is null ? "unknown CPU" : $"{line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim()} ({Environment.ProcessorCount} cores)";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}
