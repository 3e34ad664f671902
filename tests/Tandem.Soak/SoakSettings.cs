using System.Globalization;

namespace Tandem.Soak;

/// <summary>What one soak run does; every value has a command-line flag (`--calls 1000`) and a default.</summary>
internal sealed class SoakSettings
{
    /// <summary>Calls to make (an upper bound: the run may end earlier at <see cref="Seconds"/>).</summary>
    public long Calls { get; set; } = 1_000_000;

    /// <summary>Stop after this many seconds even if calls remain (0: no time limit), once every fault kind was injected.</summary>
    public double Seconds { get; set; }

    /// <summary>Seeds the call mix, the inputs and the fault schedule: the same seed gives the same calls and the same sequence of faults.</summary>
    public int Seed { get; set; } = 12;

    /// <summary>Supervised tandem-worker processes in the Remote pool.</summary>
    public int Workers { get; set; } = 3;

    /// <summary>Calls in flight at once (one loop each).</summary>
    public int Concurrency { get; set; } = 16;

    /// <summary>Share of calls sent to the Remote pool; the rest run on the in-process Native backend.</summary>
    public double RemoteShare { get; set; } = 0.6;

    /// <summary>Mean pause between two faults, in milliseconds.</summary>
    public int FaultGapMs { get; set; } = 800;

    /// <summary>Tandem:CallTimeout, the deadline of every call.</summary>
    public double CallTimeoutSeconds { get; set; } = 3;

    /// <summary>Tandem:Remote:CallDeadline, the deadline of one attempt on one worker (how a stopped worker is noticed).</summary>
    public double AttemptDeadlineSeconds { get; set; } = 1;

    /// <summary>A call not completed within the call timeout plus this grace is a soak failure.</summary>
    public double GraceSeconds { get; set; } = 15;

    /// <summary>RSS flatness: the last quarter's median may be at most the first quarter's median times this factor, plus <see cref="RssSlackMiB"/>.</summary>
    public double RssFactor { get; set; } = 1.25;

    /// <summary>RSS flatness slack, in MiB.</summary>
    public double RssSlackMiB { get; set; } = 48;

    /// <summary>Interval between two RSS samples, in milliseconds.</summary>
    public int RssSampleMs { get; set; } = 250;

    /// <summary>Hot swaps that load a library (each keeps the old one mapped for the life of the process); further hot-swap faults are refused swaps.</summary>
    public int MaxHotSwaps { get; set; } = 10;

    /// <summary>The fault kinds the chaos driver injects (default: every kind).</summary>
    public FaultKind[] Faults { get; set; } = Enum.GetValues<FaultKind>();

    /// <summary>Where report.json and report.md are written.</summary>
    public string Output { get; set; } = "artifacts/soak";

    /// <summary>tandem-worker to supervise; null: $TANDEM_WORKER_PATH, else the repository's release build.</summary>
    public string? WorkerPath { get; set; }

    public static SoakSettings Parse(string[] args)
    {
        var settings = new SoakSettings();
        for (var i = 0; i < args.Length; i++)
        {
            var flag = args[i];
            if (flag is "-h" or "--help")
            {
                throw new SoakUsageException(Usage);
            }

            if (i + 1 >= args.Length)
            {
                throw new SoakUsageException($"{flag} needs a value\n{Usage}");
            }

            var value = args[++i];
            switch (flag)
            {
                case "--calls": settings.Calls = Long(flag, value, 1); break;
                case "--seconds": settings.Seconds = Double(flag, value, 0); break;
                case "--seed": settings.Seed = (int)Long(flag, value, 0, int.MaxValue); break;
                case "--workers": settings.Workers = (int)Long(flag, value, 2, int.MaxValue); break;
                case "--concurrency": settings.Concurrency = (int)Long(flag, value, 1, int.MaxValue); break;
                case "--remote-share": settings.RemoteShare = Double(flag, value, 0, 1); break;
                case "--fault-gap-ms": settings.FaultGapMs = (int)Long(flag, value, 10, int.MaxValue); break;
                case "--call-timeout": settings.CallTimeoutSeconds = Double(flag, value, 0.1); break;
                case "--attempt-deadline": settings.AttemptDeadlineSeconds = Double(flag, value, 0.05); break;
                case "--grace": settings.GraceSeconds = Double(flag, value, 1); break;
                case "--rss-factor": settings.RssFactor = Double(flag, value, 1); break;
                case "--rss-slack-mib": settings.RssSlackMiB = Double(flag, value, 0); break;
                case "--rss-sample-ms": settings.RssSampleMs = (int)Long(flag, value, 10, int.MaxValue); break;
                case "--max-hot-swaps": settings.MaxHotSwaps = (int)Long(flag, value, 0, int.MaxValue); break;
                case "--faults": settings.Faults = Kinds(flag, value); break;
                case "--out": settings.Output = value; break;
                case "--worker": settings.WorkerPath = value; break;
                default: throw new SoakUsageException($"unknown flag {flag}\n{Usage}");
            }
        }

        return settings;
    }

    public const string Usage =
        "usage: tandem-soak [--calls N (1000000)] [--seconds S (0: none)] [--seed N (12)] [--workers N (3)]\n" +
        "                   [--concurrency N (16)] [--remote-share F (0.6)] [--fault-gap-ms N (800)]\n" +
        "                   [--call-timeout S (3)] [--attempt-deadline S (1)] [--grace S (15)]\n" +
        "                   [--rss-factor F (1.25)] [--rss-slack-mib N (48)] [--rss-sample-ms N (250)]\n" +
        "                   [--max-hot-swaps N (10)] [--faults kill,stall,slow,restart,hotswap,flags (all)] [--out DIR (artifacts/soak)] [--worker PATH]\n" +
        "A run ends after --calls calls, or after --seconds once every fault kind was injected (at the latest 2 x --seconds + 10 s).";

    private static FaultKind[] Kinds(string flag, string value)
    {
        var kinds = new List<FaultKind>();
        foreach (var name in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            kinds.Add(Enum.TryParse<FaultKind>(name, ignoreCase: true, out var kind) && Enum.IsDefined(kind)
                ? kind
                : throw new SoakUsageException($"{flag}: unknown fault kind '{name}' (known: {string.Join(", ", Enum.GetNames<FaultKind>()).ToLowerInvariant()})"));
        }

        return kinds.Count > 0 ? [.. kinds.Distinct()] : throw new SoakUsageException($"{flag} needs at least one fault kind");
    }

    private static long Long(string flag, string value, long min, long max = long.MaxValue) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) && parsed >= min && parsed <= max
            ? parsed
            : throw new SoakUsageException($"{flag} must be an integer in [{min}, {max}], got '{value}'");

    private static double Double(string flag, string value, double min, double max = double.MaxValue) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && parsed >= min && parsed <= max
            ? parsed
            : throw new SoakUsageException($"{flag} must be a number in [{min}, {max}], got '{value}'");
}

/// <summary>Bad command line: the message says which flag and how to fix it.</summary>
internal sealed class SoakUsageException(string message) : Exception(message);
