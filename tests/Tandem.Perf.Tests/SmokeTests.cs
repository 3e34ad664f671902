using System.Diagnostics;
using System.Text.Json;
using Tandem.Perf.Report;
using Tandem.Tests.Shared;

namespace Tandem.Perf.Tests;

/// <summary>
/// The tool as a user runs it: a real process, in-process Managed and
/// Native, two concurrency steps of about a second each, then the files it
/// wrote read back. Checks shape and content, never timing.
/// </summary>
public sealed class SmokeTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly string _out = Path.Combine(Path.GetTempPath(), $"tandem-perf-smoke-{Guid.NewGuid():N}");

    [Fact]
    public async Task Run_ManagedAndNative_WritesCsvJsonAndPlots()
    {
        var (code, output, error) = await RunToolAsync(
            "--kernel", "similarity.topk", "--backend", "managed,native", "--shape", "n=2000,dim=32",
            "--concurrency", "1:2", "--warmup-seconds", "0.3", "--measurement-seconds", "0.8", "--out", _out);

        Assert.True(code == 0, $"tandem-perf exited {code}\nstdout:\n{output}\nstderr:\n{error}");
        Assert.Contains("tandem-perf: native c=2:", output, StringComparison.Ordinal);

        var lines = File.ReadAllLines(Path.Combine(_out, "results.csv"));
        Assert.Equal(string.Join(',', ResultsWriter.Columns), lines[0]);
        Assert.Equal(5, lines.Length);
        var header = lines[0].Split(',');
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.Equal(["managed", "managed", "native", "native"], rows.Select(r => r[Array.IndexOf(header, "backend")]));
        Assert.All(rows, r => Assert.True(double.Parse(r[Array.IndexOf(header, "throughput_per_s")], System.Globalization.CultureInfo.InvariantCulture) > 0));
        Assert.All(rows, r => Assert.Equal("meter", r[Array.IndexOf(header, "server_source")]));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "results.json")));
        var environment = json.RootElement.GetProperty("environment");
        Assert.False(string.IsNullOrEmpty(environment.GetProperty("cpu").GetString()));
        Assert.Contains(environment.GetProperty("isa").GetString(), new[] { "avx512", "avx2", "portable" });
        var runs = json.RootElement.GetProperty("runs");
        Assert.Equal(2, runs.GetArrayLength());
        foreach (var run in runs.EnumerateArray())
        {
            Assert.Equal(2, run.GetProperty("steps").GetArrayLength());
            foreach (var step in run.GetProperty("steps").EnumerateArray())
            {
                Assert.True(step.GetProperty("ok").GetInt64() > 0);
                Assert.True(step.GetProperty("latency").GetProperty("p99_ms").GetDouble() >= step.GetProperty("latency").GetProperty("p50_ms").GetDouble());
                Assert.True(step.GetProperty("server").GetProperty("batches").GetInt64() > 0);
            }
        }

        foreach (var plot in PlotWriter.FileNames)
        {
            var bytes = File.ReadAllBytes(Path.Combine(_out, plot));
            Assert.Equal(PngSignature, bytes[..8]);
            Assert.True(bytes.Length > 10_000, $"{plot} is only {bytes.Length} bytes");
        }
    }

    [Fact]
    public async Task Run_BadKernel_ExitCode2()
    {
        var (code, _, error) = await RunToolAsync("--kernel", "no.such.kernel", "--out", _out);

        Assert.Equal(2, code);
        Assert.Contains("no.such.kernel", error, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        if (Directory.Exists(_out))
        {
            Directory.Delete(_out, recursive: true);
        }
    }

    private static async Task<(int Code, string Output, string Error)> RunToolAsync(params string[] args)
    {
        var tool = Path.Combine(AppContext.BaseDirectory, "tandem-perf.dll");
        Assert.True(File.Exists(tool), $"{tool} is missing: build bench/Tandem.Perf");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryPaths.Root() };
        start.ArgumentList.Add(tool);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"tandem-perf did not exit within 120 s: {await output}");
        }

        return (process.ExitCode, await output, await error);
    }
}
