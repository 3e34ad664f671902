using Tandem.Perf.Cli;
using Tandem.Perf.Report;
using Tandem.Perf.Telemetry;

namespace Tandem.Perf.Tests;

/// <summary>Bad input: exit code 2 and a message that says what to fix, before anything starts.</summary>
public sealed class CommandLineTests
{
    [Theory]
    [InlineData("--kernel no.such.kernel", "--kernel no.such.kernel: Tandem's kernels are similarity.topk")]
    [InlineData("--kernel similarity.topk --backend gpu", "--backend 'gpu': use managed, native, remote or http")]
    [InlineData("--kernel similarity.topk --shape batch", "--shape 'batch': use NAME=VALUE")]
    [InlineData("--kernel similarity.topk --shape batch=-1", "--shape batch=-1: use 0 to")]
    [InlineData("--kernel similarity.topk --shape rows=4", "kernel 'similarity.topk' has no symbol 'rows'; its symbols are batch, dim, k, n")]
    [InlineData("--kernel similarity.topk --request-rate -5", "--request-rate -5: a rate is above 0")]
    [InlineData("--kernel similarity.topk --request-rate 0", "--request-rate '0': 0 is below the minimum")]
    [InlineData("--kernel similarity.topk --request-intervals /nonexistent/trace.txt", "file '/nonexistent/trace.txt' does not exist")]
    [InlineData("--kernel similarity.topk --param k=9999", "parameter 'k' of 'similarity.topk' is 1 to 4096")]
    [InlineData("--kernel similarity.topk --param metric=manhattan", "--param metric=manhattan: choose one of dot, cosine, l2")]
    [InlineData("--kernel similarity.topk --param depth=3", "has no parameter 'depth'; it takes k, metric")]
    [InlineData("--kernel similarity.topk --values nope=1:2", "has no tensor 'nope'")]
    [InlineData("--kernel similarity.topk --backend http", "--backend http needs --url")]
    [InlineData("--kernel similarity.topk --concurrency 4 --request-rate 10", "give one of --concurrency, --request-rate or --request-intervals")]
    [InlineData("--kernel similarity.topk --concurrency 1:64 --max-outstanding 8", "64 callers is above --max-outstanding 8")]
    [InlineData("--kernel similarity.topk --measurement-seconds", "--measurement-seconds needs a value")]
    [InlineData("--kernel similarity.topk --speed 3", "unknown option '--speed'")]
    [InlineData("--backend native", "--kernel is required")]
    [InlineData("--kernel similarity.topk --backend native --set Tandem:Batching:MaxBatchRows=0 --no-plots --out {out}", "the Native host refuses its options (check --set)")]
    [InlineData("--kernel diagnostics.noop --backend http --url http://127.0.0.1:1", "kernel 'diagnostics.noop' has no HTTP endpoint there")]
    [InlineData("--kernel similarity.topk --backend http --url ftp://127.0.0.1", "--url 'ftp://127.0.0.1' is not an http:// or https:// address")]
    [InlineData("--kernel x --library /nonexistent/libmine.so", "--library: '/nonexistent/libmine.so' does not exist")]
    [InlineData("plot /nonexistent/run --out /tmp", "'/nonexistent/run' does not exist")]
    [InlineData("report /nonexistent/run", "report needs --doc FILE")]
    public async Task Run_BadInput_ExitCode2WithTheReason(string arguments, string expected)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var outDir = Path.Combine(Path.GetTempPath(), $"tandem-perf-cli-{Guid.NewGuid():N}");

        var code = await PerfApp.RunAsync(arguments.Replace("{out}", outDir, StringComparison.Ordinal).Split(' '), output, error, CancellationToken.None);

        Assert.Equal(PerfApp.BadInput, code);
        Assert.Contains(expected, error.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(outDir), "bad input must not leave an output directory behind");
    }

    [Fact]
    public async Task Run_Help_PrintsUsage()
    {
        var output = new StringWriter();

        var code = await PerfApp.RunAsync(["--help"], output, TextWriter.Null, CancellationToken.None);

        Assert.Equal(PerfApp.Done, code);
        Assert.Contains("--request-intervals FILE", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Steps_RateRange_OneOpenLoopStepPerRate()
    {
        var options = RunOptions.Parse(["--kernel", "similarity.topk", "--request-rate", "100:400:x2", "--request-distribution", "poisson"]);

        var steps = options.Steps();

        Assert.Equal(["100/s", "200/s", "400/s"], steps.Select(s => s.Label));
        Assert.All(steps, s => Assert.Null(s.Concurrency));
        Assert.Equal("Poisson", steps[0].Schedule!().Describe().Split(' ')[1]);
    }

    [Fact]
    public void Regenerate_ReplacesOnlyTheMarkedBlock()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tandem-perf-doc-{Guid.NewGuid():N}.md");
        File.WriteAllText(path, $"# Before\n\n{PerformanceTable.Begin}\nold table\n{PerformanceTable.End}\n\nAfter.\n");
        try
        {
            PerformanceTable.Regenerate(path, [Results()], "make perf-report");

            var text = File.ReadAllText(path);
            Assert.StartsWith($"# Before\n\n{PerformanceTable.Begin}\n", text, StringComparison.Ordinal);
            Assert.EndsWith($"{PerformanceTable.End}\n\nAfter.\n", text, StringComparison.Ordinal);
            Assert.DoesNotContain("old table", text, StringComparison.Ordinal);
            Assert.Contains("**Test CPU**", text, StringComparison.Ordinal);
            Assert.Contains("| native | c=4 | 1,234 | 1.50 | 2.00 | 12.0 | 3 RESOURCE_EXHAUSTED |", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Plot_TwoRuns_MergedIntoOnePlotSet()
    {
        var root = Path.Combine(Path.GetTempPath(), $"tandem-perf-plot-{Guid.NewGuid():N}");
        try
        {
            foreach (var run in new[] { "a", "b" })
            {
                Directory.CreateDirectory(Path.Combine(root, run));
                ResultsWriter.Write(Results(), Path.Combine(root, run));
            }

            var code = await PerfApp.RunAsync(["plot", Path.Combine(root, "a"), Path.Combine(root, "b", "results.json"), "--out", Path.Combine(root, "merged")], TextWriter.Null, TextWriter.Null, CancellationToken.None);

            Assert.Equal(PerfApp.Done, code);
            Assert.All(PlotWriter.FileNames, f => Assert.True(new FileInfo(Path.Combine(root, "merged", f)).Length > 10_000, $"{f} is missing or nearly empty"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Read_NotAResultsFile_UsageException()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tandem-perf-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{\"tool\": \"something-else\"}");
        try
        {
            var e = Assert.Throws<UsageException>(() => PerfResults.Read(path));

            Assert.Contains("is not a tandem-perf results.json", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Regenerate_NoMarkers_UsageException()
    {
        var path = Path.Combine(Path.GetTempPath(), $"tandem-perf-doc-{Guid.NewGuid():N}.md");
        File.WriteAllText(path, "no markers here\n");
        try
        {
            var e = Assert.Throws<UsageException>(() => PerformanceTable.Regenerate(path, [Results()], null));

            Assert.Contains(PerformanceTable.Begin, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static PerfResults Results() => new()
    {
        Environment = new RunEnvironment { Cpu = "Test CPU", Cores = 2, Isa = "avx2", IsaSource = "TANDEM_ISA", Dotnet = ".NET 10", Os = "Linux", Commit = "abc1234", DateUtc = "2026-12-01 00:00:00", Command = "tandem-perf --kernel similarity.topk" },
        Runs =
        [
            new RunResult
            {
                Label = "native", Backend = "native", Kernel = "similarity.topk", Target = "in process", Mode = "concurrency",
                Steps = [new StepResult { Step = "c=4", Concurrency = 4, WindowSeconds = 1, Count = 1237, Ok = 1234, ThroughputPerSecond = 1234, Errors = new() { ["RESOURCE_EXHAUSTED"] = 3 }, Latency = new LatencyFigures(1.5, 2, 3, 12, 20, 1.7),
                    Server = new ServerStats("meter", new DurationStats(1234, 1.2, 1.1, 1.5, 2), new DurationStats(1234, 0.2, 0.1, 0.4, 0.9), new DurationStats(400, 0.8, 0.7, 1, 1.2), 400, 3.1, [new BatchBucket(1, 1, 100), new BatchBucket(4, 4, 300)]) }],
            },
        ],
    };
}
