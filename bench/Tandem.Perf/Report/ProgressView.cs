using System.Diagnostics;
using System.Globalization;
using Spectre.Console;
using Tandem.Perf.Load;

namespace Tandem.Perf.Report;

/// <summary>
/// Progress while a run goes: on a terminal a live table (Spectre.Console)
/// with one row per step, updated four times a second; otherwise — CI logs,
/// a pipe — one plain line when a step starts and one when it ends.
/// </summary>
internal abstract class ProgressView
{
    public static ProgressView Create(string mode, TextWriter output)
    {
        var live = mode == "live" || (mode == "auto" && output == Console.Out && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive);
        return live ? new LiveView() : new PlainView(output);
    }

    public abstract void Environment(RunEnvironment environment);

    public abstract void Note(string text);

    public abstract void Run(RunResult run);

    public abstract void StepStarted(RunResult run, StepPlan plan, StepRecorder recorder);

    public abstract void StepFinished(RunResult run, StepResult step);

    public abstract void Complete();

    internal static string EnvironmentLine(RunEnvironment e) =>
        $"{e.Cpu}, {e.Cores} cores, ISA {e.Isa} ({e.IsaSource}), {e.Dotnet}, commit {e.Commit}, load average {Number(e.LoadAverageAtStart, "0.00")}";

    internal static string Summary(StepResult step)
    {
        var errors = step.Errors.Count == 0 ? "0 errors" : string.Join(", ", step.Errors.Select(e => $"{e.Value} {e.Key}"));
        var server = step.Server is { } s
            ? $"; server queue {Number(s.Queue?.MeanMs, "0.###")} ms, compute {Number(s.Compute?.MeanMs, "0.###")} ms, {Number(s.MeanBatchRows, "0.#")} rows/batch"
            : "";
        return $"{step.ThroughputPerSecond:0.#}/s, p50 {Number(step.Latency?.P50Ms, "0.###")} ms, p90 {Number(step.Latency?.P90Ms, "0.###")} ms, p99 {Number(step.Latency?.P99Ms, "0.###")} ms, {step.Ok} ok, {errors}{(step.Unfinished > 0 ? $", {step.Unfinished} unfinished" : "")}{server}";
    }

    internal static string Number(double? value, string format) => value is { } v && double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    private sealed class PlainView(TextWriter output) : ProgressView
    {
        public override void Environment(RunEnvironment environment) => output.WriteLine($"tandem-perf: {EnvironmentLine(environment)}");

        public override void Note(string text) => output.WriteLine($"tandem-perf: {text}");

        public override void Run(RunResult run) => output.WriteLine($"tandem-perf: {run.Label}: {run.Target}; {string.Join(", ", run.Symbols.Select(s => $"{s.Key}={s.Value}"))}; {string.Join(", ", run.Params.Select(p => $"{p.Key}={p.Value}"))}");

        public override void StepStarted(RunResult run, StepPlan plan, StepRecorder recorder) =>
            output.WriteLine($"tandem-perf: {run.Label} {plan.Label}: {plan.WarmUp.TotalSeconds:0.#} s warm-up, {plan.Measurement.TotalSeconds:0.#} s measured");

        public override void StepFinished(RunResult run, StepResult step) => output.WriteLine($"tandem-perf: {run.Label} {step.Step}: {Summary(step)}");

        public override void Complete()
        {
        }
    }

    private sealed class LiveView : ProgressView
    {
        private readonly object _gate = new();
        private readonly List<Row> _rows = [];
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private string _header = "";
        private string _note = "";
        private Task? _display;

        public override void Environment(RunEnvironment environment)
        {
            _header = EnvironmentLine(environment);
            _display = AnsiConsole.Live(new Text("")).AutoClear(false).StartAsync(async context =>
            {
                while (!_done.Task.IsCompleted)
                {
                    context.UpdateTarget(Render());
                    await Task.WhenAny(_done.Task, Task.Delay(250)).ConfigureAwait(false);
                }

                context.UpdateTarget(Render());
            });
        }

        public override void Note(string text)
        {
            lock (_gate)
            {
                _note = text;
            }
        }

        public override void Run(RunResult run) => Note($"{run.Label}: {run.Target}");

        public override void StepStarted(RunResult run, StepPlan plan, StepRecorder recorder)
        {
            lock (_gate)
            {
                _rows.Add(new Row(run.Label, plan, recorder, Stopwatch.StartNew()));
            }
        }

        public override void StepFinished(RunResult run, StepResult step)
        {
            lock (_gate)
            {
                _rows[^1] = _rows[^1] with { Result = step };
            }
        }

        public override void Complete()
        {
            _note = "done";
            _done.TrySetResult();
            _display?.GetAwaiter().GetResult();
        }

        private Table Render()
        {
            var table = new Table().Border(TableBorder.Rounded).Title($"tandem-perf — {Markup.Escape(_header)}");
            foreach (var column in new[] { "run", "step", "state", "requests", "ok/s", "p50 ms", "p90 ms", "p99 ms", "errors", "queue ms", "compute ms", "rows/batch" })
            {
                table.AddColumn(new TableColumn(column).RightAligned());
            }

            lock (_gate)
            {
                foreach (var row in _rows)
                {
                    if (row.Result is { } r)
                    {
                        table.AddRow(
                            Markup.Escape(row.Run), Markup.Escape(r.Step), "[green]done[/]", r.Count.ToString(CultureInfo.InvariantCulture),
                            r.ThroughputPerSecond.ToString("0.#", CultureInfo.InvariantCulture), Number(r.Latency?.P50Ms, "0.###"), Number(r.Latency?.P90Ms, "0.###"), Number(r.Latency?.P99Ms, "0.###"),
                            r.Errors.Count == 0 ? "0" : $"[red]{Markup.Escape(string.Join(" ", r.Errors.Select(e => $"{e.Value} {e.Key}")))}[/]",
                            Number(r.Server?.Queue?.MeanMs, "0.###"), Number(r.Server?.Compute?.MeanMs, "0.###"), Number(r.Server?.MeanBatchRows, "0.#"));
                    }
                    else
                    {
                        var elapsed = row.Clock.Elapsed.TotalSeconds;
                        var warm = row.Plan.WarmUp.TotalSeconds;
                        var state = elapsed < warm
                            ? $"[yellow]warm-up {elapsed:0.0}/{warm:0.#} s[/]"
                            : elapsed < warm + row.Plan.Measurement.TotalSeconds ? $"[blue]measuring {elapsed - warm:0.0}/{row.Plan.Measurement.TotalSeconds:0.#} s[/]" : "[grey]draining[/]";
                        var measured = Math.Clamp(elapsed - warm, 0.001, row.Plan.Measurement.TotalSeconds);
                        table.AddRow(Markup.Escape(row.Run), Markup.Escape(row.Plan.Label), state, row.Recorder.LiveCount.ToString(CultureInfo.InvariantCulture),
                            elapsed < warm ? "–" : ((row.Recorder.LiveCount - row.Recorder.LiveErrors) / measured).ToString("0.#", CultureInfo.InvariantCulture), "", "", "", row.Recorder.LiveErrors.ToString(CultureInfo.InvariantCulture), "", "", "");
                    }
                }
            }

            table.Caption(Markup.Escape(_note));
            return table;
        }

        private sealed record Row(string Run, StepPlan Plan, StepRecorder Recorder, Stopwatch Clock, StepResult? Result = null);
    }
}
