using Tandem.Kernels;
using Tandem.Perf.Cli;
using Tandem.Perf.Load;
using Tandem.Perf.Report;
using Tandem.Perf.Targets;

namespace Tandem.Perf;

/// <summary>The commands: run (measure), plot (merge runs into plots), report (regenerate the docs table).</summary>
internal static class PerfApp
{
    public const int Done = 0;
    public const int TargetFailed = 1;
    public const int BadInput = 2;

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        try
        {
            switch (args)
            {
                case [] or ["--help" or "-h" or "help", ..]:
                    await output.WriteLineAsync(Usage.Text).ConfigureAwait(false);
                    return args.Length == 0 ? BadInput : Done;
                case ["plot", .. var rest]:
                    return Plot(rest, output);
                case ["report", .. var rest]:
                    return Report(rest, output);
                case ["run", .. var rest]:
                    return await MeasureAsync(rest, args, output, cancellationToken).ConfigureAwait(false);
                default:
                    return await MeasureAsync(args, args, output, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (UsageException e)
        {
            await error.WriteLineAsync($"tandem-perf: {e.Message}").ConfigureAwait(false);
            return BadInput;
        }
        catch (TargetException e)
        {
            await error.WriteLineAsync($"tandem-perf: {e.Message}").ConfigureAwait(false);
            return TargetFailed;
        }
    }

    private static async Task<int> MeasureAsync(string[] args, string[] all, TextWriter output, CancellationToken cancellationToken)
    {
        var options = RunOptions.Parse(args);
        var library = options.Library is null ? null : LibraryContracts.Read(options.Library);
        var contracts = library ?? LibraryContracts.Read(LibraryContracts.ReferenceLibraryPath());
        if (!contracts.Kernels.Any(k => k.Name == options.Kernel))
        {
            throw new UsageException($"--kernel {options.Kernel}: {(library is null ? "Tandem's kernels are" : $"library '{options.Library}' publishes")} {string.Join(", ", contracts.Kernels.Select(k => k.Name))}{(library is null ? "; give --library for a kernel of yours" : "")}");
        }

        if (options.Backends.Contains("http") && !HttpTarget.Kernels.Contains(options.Kernel))
        {
            throw new UsageException($"--backend http drives Tandem.Server's endpoints, which serve {string.Join(", ", HttpTarget.Kernels)}; kernel '{options.Kernel}' has no HTTP endpoint there (run it in process with --backend native or remote)");
        }

        if (options.Backends.Contains("managed") && library is not null)
        {
            throw new UsageException($"--backend managed runs a kernel on its C# twin, and tandem-perf has none for a --library kernel; use --backend native or remote for '{options.Kernel}'");
        }

        var inputs = new KernelInputs(contracts, options.Kernel, options.Shape, options.Params, options.Values);
        var environment = RunEnvironments.Capture("tandem-perf " + string.Join(' ', all));
        var results = new PerfResults { Environment = environment };
        var progress = ProgressView.Create(options.Progress, output);
        progress.Environment(environment);

        try
        {
            foreach (var backend in options.Backends)
            {
                progress.Note($"{backend}: {(backend == "http" ? "connecting" : "starting")} {(backend == "remote" ? $"{options.Workers} workers" : backend == "http" ? $"to {options.Url}" : "the host")} and drawing inputs");
                await using var target = await CreateTargetAsync(options, backend, inputs, library, cancellationToken).ConfigureAwait(false);
                var run = new RunResult
                {
                    Label = options.Label is null ? backend : options.Backends.Count == 1 ? options.Label : $"{options.Label} {backend}",
                    Backend = backend,
                    Kernel = options.Kernel,
                    Target = target.Description,
                    Mode = options.Mode,
                    Symbols = inputs.Draw(options.Seed, withState: false).Symbols.ToDictionary(),
                    Params = inputs.KernelContract.Params.ToDictionary(p => p.Name, p => ParamText(p, inputs.Params[p.Name])),
                    Settings = options.Settings.ToDictionary(),
                    WarmupSeconds = options.WarmupSeconds,
                    MeasurementSeconds = options.MeasurementSeconds,
                };
                progress.Run(run);
                results.Runs.Add(run);
                foreach (var plan in options.Steps())
                {
                    var recorder = new StepRecorder();
                    progress.StepStarted(run, plan, recorder);
                    var step = await StepRunner.RunAsync(target, plan, recorder, cancellationToken).ConfigureAwait(false);
                    run.Steps.Add(step);
                    progress.StepFinished(run, step);
                    ResultsWriter.Write(results, options.OutputDirectory);
                }
            }
        }
        finally
        {
            // Before any error is printed: the live table stops redrawing.
            progress.Complete();
        }

        ResultsWriter.Write(results, options.OutputDirectory);
        if (options.Plots)
        {
            PlotWriter.WriteAll([results], options.OutputDirectory);
        }

        await output.WriteLineAsync($"tandem-perf: wrote {string.Join(", ", ResultsWriter.Files(options.OutputDirectory, options.Plots))}").ConfigureAwait(false);
        return Done;
    }

    private static async Task<IPerfTarget> CreateTargetAsync(RunOptions options, string backend, KernelInputs inputs, KernelContractSet? library, CancellationToken cancellationToken) => backend switch
    {
        "http" => await HttpTarget.CreateAsync(options, inputs, cancellationToken).ConfigureAwait(false),
        "managed" => await InProcessTarget.CreateAsync(options, BackendKind.Managed, inputs, library, cancellationToken).ConfigureAwait(false),
        "remote" => await InProcessTarget.CreateAsync(options, BackendKind.Remote, inputs, library, cancellationToken).ConfigureAwait(false),
        _ => await InProcessTarget.CreateAsync(options, BackendKind.Native, inputs, library, cancellationToken).ConfigureAwait(false),
    };

    private static int Plot(string[] args, TextWriter output)
    {
        var (inputs, values) = Split(args, "plot", ["--out"]);
        var outDir = values.GetValueOrDefault("--out") ?? throw new UsageException("plot needs --out DIR");
        var results = inputs.Select(PerfResults.Read).ToArray();
        Directory.CreateDirectory(outDir);
        var files = PlotWriter.WriteAll(results, outDir);
        output.WriteLine($"tandem-perf: wrote {string.Join(", ", files)}");
        return Done;
    }

    private static int Report(string[] args, TextWriter output)
    {
        var (inputs, values) = Split(args, "report", ["--doc", "--command"]);
        var doc = values.GetValueOrDefault("--doc") ?? throw new UsageException("report needs --doc FILE (the Markdown file holding the tandem-perf markers)");
        PerformanceTable.Regenerate(doc, [.. inputs.Select(PerfResults.Read)], values.GetValueOrDefault("--command"));
        output.WriteLine($"tandem-perf: regenerated the tandem-perf block of {doc}");
        return Done;
    }

    private static (List<string> Inputs, Dictionary<string, string> Values) Split(string[] args, string command, string[] valued)
    {
        var inputs = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (valued.Contains(args[i]))
            {
                values[args[i]] = i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
            }
            else if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"{command}: unknown option '{args[i]}'; it takes {string.Join(", ", valued)}");
            }
            else
            {
                inputs.Add(args[i]);
            }
        }

        return inputs.Count > 0 ? (inputs, values) : throw new UsageException($"{command} needs at least one results directory or results.json");
    }

    private static string ParamText(ParamContract param, double value) => param.Kind switch
    {
        ParamKind.Enum => param.Choices[(int)value],
        ParamKind.Bool => value != 0 ? "true" : "false",
        _ => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
    };
}
