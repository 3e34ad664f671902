using System.Globalization;
using Tandem.Perf.Load;

namespace Tandem.Perf.Cli;

/// <summary>The options of <c>tandem-perf run</c> (see <see cref="Usage.Text"/>), with their documented defaults.</summary>
internal sealed class RunOptions
{
    public const double DefaultMeasurementSeconds = 5;
    public const double DefaultWarmupSeconds = 2;
    public const double DefaultDrainSeconds = 10;
    public const int DefaultMaxOutstanding = 1024;
    public const int MaxOutstandingLimit = 65536;
    public const int DefaultInputPool = 16;
    public const int DefaultWorkers = 2;
    public const string DefaultConcurrency = "1:8:x2";

    /// <summary>Most seconds one step's warm-up plus measurement may take.</summary>
    public const double MaxStepSeconds = 3600;

    /// <summary>Most bytes the pool of drawn request inputs may hold (the first case always stays).</summary>
    public const long MaxInputPoolBytes = 256L << 20;

    public required string Kernel { get; init; }

    public required IReadOnlyList<string> Backends { get; init; }

    public string? Library { get; init; }

    public Uri? Url { get; init; }

    public string? Collection { get; init; }

    public IReadOnlyDictionary<string, long> Shape { get; init; } = new Dictionary<string, long>();

    public IReadOnlyDictionary<string, string> Params { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, ValueRange[]> Values { get; init; } = new Dictionary<string, ValueRange[]>();

    /// <summary>concurrency, request-rate or request-intervals.</summary>
    public string Mode { get; init; } = "concurrency";

    public IReadOnlyList<double> Concurrency { get; init; } = [];

    public IReadOnlyList<double> Rates { get; init; } = [];

    public string Distribution { get; init; } = "constant";

    public string? IntervalsPath { get; init; }

    public double[]? Intervals { get; init; }

    public double MeasurementSeconds { get; init; } = DefaultMeasurementSeconds;

    public double WarmupSeconds { get; init; } = DefaultWarmupSeconds;

    public double DrainSeconds { get; init; } = DefaultDrainSeconds;

    public int MaxOutstanding { get; init; } = DefaultMaxOutstanding;

    public int Workers { get; init; } = DefaultWorkers;

    public string? WorkerPath { get; init; }

    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();

    public int InputPool { get; init; } = DefaultInputPool;

    public int Seed { get; init; } = 1;

    public string OutputDirectory { get; init; } = "perf-results";

    public string? Label { get; init; }

    public bool Plots { get; init; } = true;

    /// <summary>auto, live or plain.</summary>
    public string Progress { get; init; } = "auto";

    /// <summary>Parses the arguments after <c>run</c>.</summary>
    /// <exception cref="UsageException">An option is unknown, missing its value, or its value is bad.</exception>
    public static RunOptions Parse(IReadOnlyList<string> args)
    {
        string? kernel = null, library = null, url = null, collection = null, workerPath = null, label = null, intervalsPath = null;
        string backends = "native", progress = "auto", distribution = "constant", output = "perf-results";
        string? concurrency = null, rate = null;
        var shape = new Dictionary<string, long>(StringComparer.Ordinal);
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        var values = new Dictionary<string, ValueRange[]>(StringComparer.Ordinal);
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        double measurement = DefaultMeasurementSeconds, warmup = DefaultWarmupSeconds, drain = DefaultDrainSeconds;
        int maxOutstanding = DefaultMaxOutstanding, workers = DefaultWorkers, pool = DefaultInputPool, seed = 1;
        var plots = true;

        for (var i = 0; i < args.Count; i++)
        {
            var option = args[i];
            string Value()
            {
                if (i + 1 >= args.Count || (args[i + 1].StartsWith("--", StringComparison.Ordinal) && args[i + 1].Length > 2))
                {
                    throw new UsageException($"{option} needs a value");
                }

                return args[++i];
            }

            switch (option)
            {
                case "--kernel": kernel = Value(); break;
                case "--backend": backends = Value(); break;
                case "--library": library = Value(); break;
                case "--url": url = Value(); break;
                case "--collection": collection = Value(); break;
                case "--shape": Pairs(option, Value(), (k, v) => shape[k] = Whole(option, k, v, 0, long.MaxValue)); break;
                case "--param": Pairs(option, Value(), (k, v) => parameters[k] = v); break;
                case "--values":
                    var text = Value();
                    var eq = text.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new UsageException($"--values '{text}': use NAME=LOW:HIGH[:int][,LOW:HIGH...]");
                    }

                    values[text[..eq]] = ValueRange.ParseList(text[..eq], text[(eq + 1)..]);
                    break;
                case "--concurrency": concurrency = Value(); break;
                case "--request-rate": rate = Value(); break;
                case "--request-distribution": distribution = Value(); break;
                case "--request-intervals": intervalsPath = Value(); break;
                case "--measurement-seconds": measurement = Seconds(option, Value(), min: 0.1); break;
                case "--warmup-seconds": warmup = Seconds(option, Value(), min: 0); break;
                case "--drain-seconds": drain = Seconds(option, Value(), min: 0); break;
                case "--max-outstanding": maxOutstanding = (int)Whole(option, null, Value(), 1, MaxOutstandingLimit); break;
                case "--workers": workers = (int)Whole(option, null, Value(), 1, 64); break;
                case "--worker-path": workerPath = Value(); break;
                case "--set": Pairs(option, Value(), (k, v) => settings[k] = v, separator: null); break;
                case "--input-pool": pool = (int)Whole(option, null, Value(), 1, 4096); break;
                case "--seed": seed = (int)Whole(option, null, Value(), 0, int.MaxValue / 2); break;
                case "--out": output = Value(); break;
                case "--label": label = Value(); break;
                case "--no-plots": plots = false; break;
                case "--progress": progress = Value(); break;
                default: throw new UsageException($"unknown option '{option}'; see tandem-perf --help");
            }
        }

        if (kernel is null)
        {
            throw new UsageException("--kernel is required, for example --kernel similarity.topk");
        }

        var backendList = backends.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (var backend in backendList)
        {
            if (backend is not ("managed" or "native" or "remote" or "http"))
            {
                throw new UsageException($"--backend '{backend}': use managed, native, remote or http (several separated by ',')");
            }
        }

        if (backendList.Length == 0 || backendList.Distinct().Count() != backendList.Length)
        {
            throw new UsageException($"--backend '{backends}': name each backend once");
        }

        Uri? baseUrl = null;
        if (url is not null && (!Uri.TryCreate(url, UriKind.Absolute, out baseUrl) || baseUrl.Scheme is not ("http" or "https")))
        {
            throw new UsageException($"--url '{url}' is not an http:// or https:// address");
        }

        if (backendList.Contains("http") && baseUrl is null)
        {
            throw new UsageException("--backend http needs --url, the server's base address (for example --url http://127.0.0.1:5080)");
        }

        if (progress is not ("auto" or "live" or "plain"))
        {
            throw new UsageException($"--progress '{progress}': use auto, live or plain");
        }

        if (distribution is not ("constant" or "poisson"))
        {
            throw new UsageException($"--request-distribution '{distribution}': use constant or poisson");
        }

        if (warmup + measurement > MaxStepSeconds)
        {
            throw new UsageException($"--warmup-seconds + --measurement-seconds is {warmup + measurement:0.#} s; a step may take at most {MaxStepSeconds:0} s");
        }

        var modes = new[] { concurrency, rate, intervalsPath }.Count(m => m is not null);
        if (modes > 1)
        {
            throw new UsageException("give one of --concurrency, --request-rate or --request-intervals");
        }

        var mode = rate is not null ? "request-rate" : intervalsPath is not null ? "request-intervals" : "concurrency";
        var concurrencySteps = mode == "concurrency" ? StepRange.Parse("--concurrency", concurrency ?? DefaultConcurrency, min: 1, integers: true) : [];
        if (concurrencySteps.Count > 0 && concurrencySteps[^1] > maxOutstanding)
        {
            throw new UsageException($"--concurrency {concurrency}: {concurrencySteps[^1]} callers is above --max-outstanding {maxOutstanding}");
        }

        var rates = rate is null ? [] : ParseRates(rate);
        return new RunOptions
        {
            Kernel = kernel,
            Backends = backendList,
            Library = library,
            Url = baseUrl,
            Collection = collection,
            Shape = shape,
            Params = parameters,
            Values = values,
            Mode = mode,
            Concurrency = concurrencySteps,
            Rates = rates,
            Distribution = distribution,
            IntervalsPath = intervalsPath,
            Intervals = intervalsPath is null ? null : IntervalsFile.Read(intervalsPath),
            MeasurementSeconds = measurement,
            WarmupSeconds = warmup,
            DrainSeconds = drain,
            MaxOutstanding = maxOutstanding,
            Workers = workers,
            WorkerPath = workerPath,
            Settings = settings,
            InputPool = pool,
            Seed = seed,
            OutputDirectory = output,
            Label = label,
            Plots = plots,
            Progress = progress,
        };
    }

    /// <summary>The steps of the run, in order.</summary>
    public IReadOnlyList<StepPlan> Steps()
    {
        var (warmup, measurement, drain) = (TimeSpan.FromSeconds(WarmupSeconds), TimeSpan.FromSeconds(MeasurementSeconds), TimeSpan.FromSeconds(DrainSeconds));
        return Mode switch
        {
            "concurrency" => [.. Concurrency.Select(c => new StepPlan($"c={c}", (int)c, null, null, warmup, measurement, drain, MaxOutstanding))],
            "request-rate" => [.. Rates.Select(r => new StepPlan(
                $"{r.ToString("0.###", CultureInfo.InvariantCulture)}/s", null, r,
                Distribution == "poisson" ? () => RequestSchedule.Poisson(r, Seed) : () => RequestSchedule.Constant(r),
                warmup, measurement, drain, MaxOutstanding))],
            _ => [new StepPlan(Path.GetFileName(IntervalsPath!), null, 1e6 * Intervals!.Length / Intervals.Sum(), () => RequestSchedule.Intervals(Intervals!, IntervalsPath!), warmup, measurement, drain, MaxOutstanding)],
        };
    }

    private static IReadOnlyList<double> ParseRates(string text)
    {
        if (text.StartsWith('-'))
        {
            throw new UsageException($"--request-rate {text}: a rate is above 0 requests per second");
        }

        var rates = StepRange.Parse("--request-rate", text, min: double.Epsilon, integers: false);
        if (rates[^1] > RequestSchedule.MaxRate)
        {
            throw new UsageException($"--request-rate {text}: at most {RequestSchedule.MaxRate:N0} requests per second");
        }

        return rates;
    }

    private static void Pairs(string option, string text, Action<string, string> add, char? separator = ',')
    {
        foreach (var pair in separator is { } s ? text.Split(s) : [text])
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == pair.Length - 1)
            {
                throw new UsageException($"{option} '{text}': use NAME=VALUE{(separator is null ? "" : "[,NAME=VALUE...]")}");
            }

            add(pair[..eq].Trim(), pair[(eq + 1)..].Trim());
        }
    }

    private static long Whole(string option, string? name, string text, long min, long max)
    {
        var what = name is null ? $"{option} {text}" : $"{option} {name}={text}";
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            throw new UsageException($"{what}: '{text}' is not a whole number");
        }

        return value >= min && value <= max ? value : throw new UsageException($"{what}: use {min} to {max}");
    }

    private static double Seconds(string option, string text, double min)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            throw new UsageException($"{option} {text}: '{text}' is not a number of seconds");
        }

        return value >= min && value <= MaxStepSeconds ? value : throw new UsageException($"{option} {text}: use {min} to {MaxStepSeconds:0} seconds");
    }
}
