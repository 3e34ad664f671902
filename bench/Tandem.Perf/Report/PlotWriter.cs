using ScottPlot;
using Tandem.Perf.Telemetry;

namespace Tandem.Perf.Report;

/// <summary>
/// The PNG plots (ScottPlot on SkiaSharp): latency (p50 and p99) against
/// throughput with one colour per run, the distribution of batch sizes per
/// step, and the server-side time of a call per step split into queue,
/// compute and the rest. Every plot names the kernel and the CPU.
/// </summary>
internal static class PlotWriter
{
    public const string LatencyThroughput = "latency-throughput.png";
    public const string BatchSizes = "batch-sizes.png";
    public const string QueueCompute = "queue-compute.png";

    private const int Width = 1100;
    private const int Height = 650;

    public static readonly string[] FileNames = [LatencyThroughput, BatchSizes, QueueCompute];

    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>Writes the three plots of every run in <paramref name="results"/> (merged) into <paramref name="directory"/>.</summary>
    public static IReadOnlyList<string> WriteAll(IReadOnlyList<PerfResults> results, string directory)
    {
        var runs = Label(results);
        var subtitle = Subtitle(results);
        var files = new List<string>();
        foreach (var (name, draw) in new (string, Action<Plot, IReadOnlyList<(string Label, RunResult Run)>>)[]
        {
            (LatencyThroughput, DrawLatency),
            (BatchSizes, DrawBatchSizes),
            (QueueCompute, DrawQueueCompute),
        })
        {
            var plot = new Plot();
            draw(plot, runs);
            plot.Title($"{Kernels(runs)}: {Title(name)}\n{subtitle}", size: 14);
            var path = Path.Combine(directory, name);
            plot.SavePng(path, Width, Height);
            files.Add(path);
        }

        return files;
    }

    private static string Title(string file) => file switch
    {
        LatencyThroughput => "latency vs throughput (client side)",
        BatchSizes => "batch sizes per step (share of executed batches)",
        _ => "server-side time of a call per step (means)",
    };

    private static void DrawLatency(Plot plot, IReadOnlyList<(string Label, RunResult Run)> runs)
    {
        for (var i = 0; i < runs.Count; i++)
        {
            var (label, run) = runs[i];
            var steps = run.Steps.Where(s => s.Latency is not null).ToArray();
            if (steps.Length == 0)
            {
                continue;
            }

            var x = steps.Select(s => s.ThroughputPerSecond).ToArray();
            var color = Palette.GetColor(i);
            var p50 = plot.Add.Scatter(x, steps.Select(s => s.Latency!.P50Ms).ToArray(), color);
            p50.LegendText = $"{label} p50";
            p50.MarkerShape = MarkerShape.FilledCircle;
            p50.MarkerSize = 8;
            p50.LineWidth = 2;
            var p99 = plot.Add.Scatter(x, steps.Select(s => s.Latency!.P99Ms).ToArray(), color);
            p99.LegendText = $"{label} p99";
            p99.MarkerShape = MarkerShape.FilledTriangleUp;
            p99.MarkerSize = 8;
            p99.LineWidth = 2;
            p99.LinePattern = LinePattern.Dashed;
            foreach (var step in steps)
            {
                var text = plot.Add.Text(step.Step, step.ThroughputPerSecond, step.Latency!.P99Ms);
                text.LabelFontSize = 11;
                text.LabelFontColor = color;
                text.LabelAlignment = Alignment.LowerLeft;
                text.OffsetX = 7;
                text.OffsetY = -3;
            }
        }

        plot.XLabel("throughput (successful requests per second)");
        plot.YLabel("latency (ms)");
        plot.Axes.Margins(0.08, 0.12);
        plot.ShowLegend(Alignment.UpperLeft);
    }

    /// <summary>Batch-size buckets of powers of two: 1, 2, 3–4, 5–8, …</summary>
    private static (long Low, long High) Bucket(long rows)
    {
        if (rows <= 1)
        {
            return (1, 1);
        }

        var high = (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)rows);
        return ((high / 2) + 1, high);
    }

    private static void DrawBatchSizes(Plot plot, IReadOnlyList<(string Label, RunResult Run)> runs)
    {
        var bars = Positions(runs, out var ticks);
        var buckets = new SortedSet<long>();
        var shares = new List<(double Position, Dictionary<long, double> Share)>();
        foreach (var (position, _, step) in bars)
        {
            var share = new Dictionary<long, double>();
            var total = step.Server?.BatchSizes.Sum(b => b.Count) ?? 0;
            foreach (var batch in step.Server?.BatchSizes ?? [])
            {
                var (_, high) = Bucket(batch.High);
                buckets.Add(high);
                share[high] = share.GetValueOrDefault(high) + (100.0 * batch.Count / Math.Max(1, total));
            }

            shares.Add((position, share));
        }

        var order = buckets.ToArray();
        var all = new List<Bar>();
        foreach (var (position, share) in shares)
        {
            var bottom = 0.0;
            for (var b = 0; b < order.Length; b++)
            {
                var value = share.GetValueOrDefault(order[b]);
                if (value > 0)
                {
                    all.Add(new Bar { Position = position, ValueBase = bottom, Value = bottom + value, FillColor = Palette.GetColor(b), Size = 0.8 });
                }

                bottom += value;
            }
        }

        plot.Add.Bars(all);
        for (var b = 0; b < order.Length; b++)
        {
            var low = order[b] == 1 ? 1 : (order[b] / 2) + 1;
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = low == order[b] ? $"{low} row{(low == 1 ? "" : "s")}" : $"{low}–{order[b]} rows", FillColor = Palette.GetColor(b) });
        }

        Categories(plot, ticks, "share of batches (%)");
        plot.Axes.SetLimitsY(0, 102);
        if (order.Length == 0)
        {
            plot.Add.Text("no batches recorded (the server side could not be read)", 0, 50);
        }

        plot.ShowLegend(Edge.Right);
    }

    private static void DrawQueueCompute(Plot plot, IReadOnlyList<(string Label, RunResult Run)> runs)
    {
        var bars = Positions(runs, out var ticks);
        var parts = new[] { ("queue (admission → batch start)", Palette.GetColor(0)), ("compute (per batch)", Palette.GetColor(1)), ("rest of the call (in-flight wait, hand-offs)", Palette.GetColor(7)) };
        var all = new List<Bar>();
        foreach (var (position, _, step) in bars)
        {
            if (step.Server is not { } server)
            {
                continue;
            }

            var queue = server.Queue?.MeanMs ?? 0;
            var compute = server.Compute?.MeanMs ?? 0;
            var rest = Math.Max(0, (server.Call?.MeanMs ?? 0) - queue - compute);
            var bottom = 0.0;
            foreach (var (value, part) in new[] { (queue, 0), (compute, 1), (rest, 2) })
            {
                all.Add(new Bar { Position = position, ValueBase = bottom, Value = bottom + value, FillColor = parts[part].Item2, Size = 0.8 });
                bottom += value;
            }
        }

        plot.Add.Bars(all);
        foreach (var (text, color) in parts)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = text, FillColor = color });
        }

        Categories(plot, ticks, "mean time per call (ms)");
        plot.Axes.Margins(bottom: 0, top: 0.25);
        plot.ShowLegend(Alignment.UpperLeft);
    }

    /// <summary>One bar position per step, runs separated by a gap.</summary>
    private static List<(double Position, string Run, StepResult Step)> Positions(IReadOnlyList<(string Label, RunResult Run)> runs, out List<(double Position, string Label)> ticks)
    {
        var bars = new List<(double, string, StepResult)>();
        ticks = [];
        var position = 0.0;
        foreach (var (label, run) in runs)
        {
            foreach (var step in run.Steps)
            {
                bars.Add((position, label, step));
                ticks.Add((position, $"{label}\n{step.Step}"));
                position++;
            }

            position += 0.6;
        }

        return bars;
    }

    private static void Categories(Plot plot, List<(double Position, string Label)> ticks, string yLabel)
    {
        var generator = new ScottPlot.TickGenerators.NumericManual();
        foreach (var (position, label) in ticks)
        {
            generator.AddMajor(position, label);
        }

        plot.Axes.Bottom.TickGenerator = generator;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.YLabel(yLabel);
        plot.HideGrid();
    }

    /// <summary>Each run's label, made unique across merged results (the output directory's name is added when two runs share one).</summary>
    private static List<(string Label, RunResult Run)> Label(IReadOnlyList<PerfResults> results)
    {
        var runs = results.SelectMany((r, i) => r.Runs.Select(run => (File: i, run))).ToList();
        return [.. runs.Select(r => (runs.Count(o => o.run.Label == r.run.Label) > 1 ? $"{r.run.Label} #{r.File + 1}" : r.run.Label, r.run))];
    }

    private static string Kernels(IReadOnlyList<(string Label, RunResult Run)> runs) => string.Join(", ", runs.Select(r => r.Run.Kernel).Distinct());

    private static string Subtitle(IReadOnlyList<PerfResults> results) => string.Join("; ", results.Select(r => r.Environment)
        .Select(e => $"{e.Cpu}, {e.Cores} cores, ISA {e.Isa}, {e.Dotnet}, commit {e.Commit}").Distinct());
}
