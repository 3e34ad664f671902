using System.Text.Json;
using System.Text.Json.Serialization;
using Tandem.Perf.Telemetry;

namespace Tandem.Perf.Report;

/// <summary>results.json: the environment, then per run (one backend of one kernel) its steps.</summary>
internal sealed class PerfResults
{
    /// <summary>Version of this file's layout; readers refuse another.</summary>
    public const int CurrentFormat = 1;

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string Tool { get; set; } = "tandem-perf";

    public int Format { get; set; } = CurrentFormat;

    public required RunEnvironment Environment { get; set; }

    public List<RunResult> Runs { get; set; } = [];

    /// <summary>Reads a results.json (or the results.json inside a directory).</summary>
    /// <exception cref="Cli.UsageException">The file is missing, not JSON of this layout, or of another format version.</exception>
    public static PerfResults Read(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "results.json") : path;
        if (!File.Exists(file))
        {
            throw new Cli.UsageException($"'{file}' does not exist; give a results.json or the --out directory of a run");
        }

        PerfResults? results;
        try
        {
            results = JsonSerializer.Deserialize<PerfResults>(File.ReadAllText(file), Json);
        }
        catch (JsonException e)
        {
            throw new Cli.UsageException($"'{file}' is not a tandem-perf results.json: {e.Message}");
        }

        if (results is null || results.Tool != "tandem-perf" || results.Format != CurrentFormat)
        {
            throw new Cli.UsageException($"'{file}' is not a tandem-perf results.json of format {CurrentFormat}");
        }

        return results;
    }
}

/// <summary>Where the figures were measured: every report carries it.</summary>
internal sealed class RunEnvironment
{
    public required string Cpu { get; set; }

    public int Cores { get; set; }

    /// <summary>The Rust kernels' SIMD path: avx512, avx2 or portable.</summary>
    public required string Isa { get; set; }

    /// <summary>How <see cref="Isa"/> was chosen ("TANDEM_ISA" or "detected").</summary>
    public required string IsaSource { get; set; }

    /// <summary>Whether .NET's Vector512 paths are on (DOTNET_EnableAVX512F=0 turns them off).</summary>
    public bool DotnetVector512 { get; set; }

    public required string Dotnet { get; set; }

    public required string Os { get; set; }

    public required string Commit { get; set; }

    public required string DateUtc { get; set; }

    public required string Command { get; set; }

    /// <summary>/proc/loadavg's 1-minute figure when the run started (other work on the machine).</summary>
    public double? LoadAverageAtStart { get; set; }
}

/// <summary>One backend of one kernel under one mode.</summary>
internal sealed class RunResult
{
    public required string Label { get; set; }

    public required string Backend { get; set; }

    public required string Kernel { get; set; }

    public required string Target { get; set; }

    /// <summary>concurrency, request-rate or request-intervals.</summary>
    public required string Mode { get; set; }

    public Dictionary<string, long> Symbols { get; set; } = [];

    public Dictionary<string, string> Params { get; set; } = [];

    public Dictionary<string, string> Settings { get; set; } = [];

    public double WarmupSeconds { get; set; }

    public double MeasurementSeconds { get; set; }

    public List<StepResult> Steps { get; set; } = [];
}

/// <summary>One step of a run: a concurrency, a rate, or the replayed intervals.</summary>
internal sealed class StepResult
{
    /// <summary>Like "c=4" or "200/s".</summary>
    public required string Step { get; set; }

    public int? Concurrency { get; set; }

    /// <summary>The offered rate (requests per second) of an open-loop step.</summary>
    public double? RequestRate { get; set; }

    /// <summary>Length of the measured window (s).</summary>
    public double WindowSeconds { get; set; }

    /// <summary>Requests started (closed loop) or due (open loop) inside the window.</summary>
    public long Count { get; set; }

    public long Ok { get; set; }

    /// <summary>Failed requests by code (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, HTTP_502, ...).</summary>
    public Dictionary<string, long> Errors { get; set; } = [];

    /// <summary>Requests still running when the drain period ended (cancelled, not counted in <see cref="Count"/>).</summary>
    public long Unfinished { get; set; }

    /// <summary>Successful requests per second of the window.</summary>
    public double ThroughputPerSecond { get; set; }

    /// <summary>Latency of the successful requests: from send (closed loop) or due time (open loop) to completion.</summary>
    public LatencyFigures? Latency { get; set; }

    /// <summary>CPU time of this process per request in the window (µs); in process it includes the kernel's own work.</summary>
    public double? ClientCpuUsPerCall { get; set; }

    /// <summary>Open loop: 99th percentile of how late requests were sent (ms).</summary>
    public double? SendLagP99Ms { get; set; }

    /// <summary>Open loop: sends that found every --max-outstanding slot taken.</summary>
    public long? WaitedForSlot { get; set; }

    public double? LoadBefore { get; set; }

    public double? LoadAfter { get; set; }

    public ServerStats? Server { get; set; }
}

/// <summary>Client-side latency percentiles (ms).</summary>
internal sealed record LatencyFigures(double P50Ms, double P90Ms, double P95Ms, double P99Ms, double MaxMs, double MeanMs);
