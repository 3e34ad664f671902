using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Tandem.Perf.Report;

/// <summary>results.json (everything) and results.csv (one row per step, with the environment on every row).</summary>
internal static class ResultsWriter
{
    /// <summary>The CSV's columns, in order.</summary>
    public static readonly string[] Columns =
    [
        "run", "backend", "kernel", "mode", "step", "concurrency", "request_rate", "window_s", "count", "ok", "errors", "unfinished",
        "throughput_per_s", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "client_cpu_us_per_call", "send_lag_p99_ms",
        "server_source", "server_call_p50_ms", "server_call_mean_ms", "server_queue_p50_ms", "server_queue_mean_ms",
        "server_compute_p50_ms", "server_compute_mean_ms", "batches", "mean_batch_rows", "errors_by_code",
        "load_before", "load_after", "cpu", "cores", "isa", "dotnet", "commit",
    ];

    /// <summary>Writes both files into <paramref name="directory"/>, created when missing (only once there is something to write).</summary>
    public static void Write(PerfResults results, string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "results.json"), JsonSerializer.Serialize(results, PerfResults.Json) + "\n");
        File.WriteAllText(Path.Combine(directory, "results.csv"), Csv(results));
    }

    public static IEnumerable<string> Files(string directory, bool plots) =>
        new[] { "results.csv", "results.json" }.Concat(plots ? PlotWriter.FileNames : []).Select(f => Path.Combine(directory, f));

    internal static string Csv(PerfResults results)
    {
        var text = new StringBuilder().AppendJoin(',', Columns).Append('\n');
        var e = results.Environment;
        foreach (var run in results.Runs)
        {
            foreach (var s in run.Steps)
            {
                object?[] cells =
                [
                    run.Label, run.Backend, run.Kernel, run.Mode, s.Step, s.Concurrency, s.RequestRate, s.WindowSeconds, s.Count, s.Ok, s.Count - s.Ok, s.Unfinished,
                    s.ThroughputPerSecond, s.Latency?.P50Ms, s.Latency?.P90Ms, s.Latency?.P95Ms, s.Latency?.P99Ms, s.Latency?.MaxMs, s.Latency?.MeanMs, s.ClientCpuUsPerCall, s.SendLagP99Ms,
                    s.Server?.Source, s.Server?.Call?.P50Ms, s.Server?.Call?.MeanMs, s.Server?.Queue?.P50Ms, s.Server?.Queue?.MeanMs,
                    s.Server?.Compute?.P50Ms, s.Server?.Compute?.MeanMs, s.Server?.Batches, s.Server?.MeanBatchRows,
                    string.Join(' ', s.Errors.Select(x => $"{x.Key}={x.Value}")),
                    s.LoadBefore, s.LoadAfter, e.Cpu, e.Cores, e.Isa, e.Dotnet, e.Commit,
                ];
                text.AppendJoin(',', cells.Select(Cell)).Append('\n');
            }
        }

        return text.ToString();
    }

    private static string Cell(object? value) => value switch
    {
        null => "",
        double d when !double.IsFinite(d) => "",
        double d => d.ToString("0.######", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        string s when s.IndexOfAny([',', '"', '\n']) >= 0 => $"\"{s.Replace("\"", "\"\"", StringComparison.Ordinal)}\"",
        _ => value.ToString() ?? "",
    };
}
