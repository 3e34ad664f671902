// The main job (for now): build a vector collection, run top-k queries on the
// Managed and Native backends, check that they agree, and print timings.
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Tandem;
using Tandem.Similarity;

var settings = DemoSettings.Parse(args);
Console.WriteLine($"Tandem demo: similarity.topk over {settings.Rows:N0} × {settings.Dimension} f32 vectors, k = {settings.K}, metric = {settings.Metric}");

var vectors = Gaussian(settings.Rows * settings.Dimension, seed: 1);
var single = Gaussian(settings.Dimension, seed: 2);
var batch = Gaussian(settings.Batch * settings.Dimension, seed: 3);

var backends = new Dictionary<BackendKind, ISimilaritySearch>();
var providers = new List<ServiceProvider>();
foreach (var kind in new[] { BackendKind.Managed, BackendKind.Native })
{
    var provider = new ServiceCollection()
        .AddLogging(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information))
        .AddTandem(o => { o.Backend = kind; o.FallbackToManaged = false; })
        .BuildServiceProvider();
    providers.Add(provider);
    backends[kind] = provider.GetRequiredService<ISimilaritySearch>();
}

var timings = new List<(string Case, BackendKind Backend, double Ms)>();
var results = new Dictionary<(string, BackendKind), TopKResult>();
foreach (var (kind, search) in backends)
{
    var clock = Stopwatch.StartNew();
    var info = await search.CreateCollectionAsync("demo", vectors, settings.Dimension);
    timings.Add(("create collection", kind, clock.Elapsed.TotalMilliseconds));
    Console.WriteLine($"  {kind,-7} collection ready: {info.Count:N0} vectors, {info.SizeBytes / (1024.0 * 1024):F0} MiB");

    foreach (var (name, queries, runs) in new[] { ("1 query", single, 7), ($"batch of {settings.Batch}", batch, 3) })
    {
        results[(name, kind)] = await search.TopKAsync("demo", queries, settings.K, settings.Metric);
        var samples = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            clock.Restart();
            await search.TopKAsync("demo", queries, settings.K, settings.Metric);
            samples[i] = clock.Elapsed.TotalMilliseconds;
        }

        Array.Sort(samples);
        timings.Add((name, kind, samples[runs / 2]));
    }
}

Console.WriteLine();
Console.WriteLine("Top 5 for the single query:");
Console.WriteLine($"  {"rank",4}  {"Managed id",10} {"score",12}   {"Native id",10} {"score",12}");
var managedSingle = results[("1 query", BackendKind.Managed)];
var nativeSingle = results[("1 query", BackendKind.Native)];
for (var r = 0; r < Math.Min(5, managedSingle.K); r++)
{
    Console.WriteLine($"  {r + 1,4}  {managedSingle.Ids[r],10} {managedSingle.Scores[r],12:F5}   {nativeSingle.Ids[r],10} {nativeSingle.Scores[r],12:F5}");
}

Console.WriteLine();
Console.WriteLine($"  {"case",-20} {"Managed ms",12} {"Native ms",12} {"speed-up",10}");
foreach (var name in timings.Select(t => t.Case).Distinct())
{
    var managed = timings.Single(t => t.Case == name && t.Backend == BackendKind.Managed).Ms;
    var native = timings.Single(t => t.Case == name && t.Backend == BackendKind.Native).Ms;
    Console.WriteLine($"  {name,-20} {managed,12:F2} {native,12:F2} {managed / native,9:F1}×");
}

var agree = true;
foreach (var name in new[] { "1 query", $"batch of {settings.Batch}" })
{
    var (sameIds, worst) = Compare(results[(name, BackendKind.Managed)], results[(name, BackendKind.Native)]);
    var ok = sameIds && worst <= 1e-4;
    agree &= ok;
    Console.WriteLine($"  {name}: ids {(sameIds ? "identical" : "DIFFER")}, max relative score difference {worst:E1} → {(ok ? "agree" : "DISAGREE")}");
}

foreach (var provider in providers)
{
    await provider.DisposeAsync();
}

Console.WriteLine(agree ? "Managed and Native agree." : "Managed and Native DISAGREE.");
return agree ? 0 : 1;

static (bool SameIds, double WorstRelative) Compare(TopKResult a, TopKResult b)
{
    var worst = 0.0;
    for (var i = 0; i < a.Scores.Length; i++)
    {
        worst = Math.Max(worst, Math.Abs(a.Scores[i] - b.Scores[i]) / Math.Max(1e-6, Math.Abs(a.Scores[i])));
    }

    return (a.Ids.AsSpan().SequenceEqual(b.Ids), worst);
}

static float[] Gaussian(int count, int seed)
{
    var random = new Random(seed);
    var values = new float[count];
    for (var i = 0; i < values.Length; i++)
    {
        values[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
    }

    return values;
}

internal sealed record DemoSettings(int Rows, int Dimension, int Batch, int K, SimilarityMetric Metric)
{
    public static DemoSettings Parse(string[] args)
    {
        var settings = new DemoSettings(200_000, 384, 64, 10, SimilarityMetric.Dot);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            settings = args[i] switch
            {
                "--rows" => settings with { Rows = int.Parse(args[i + 1]) },
                "--dim" => settings with { Dimension = int.Parse(args[i + 1]) },
                "--batch" => settings with { Batch = int.Parse(args[i + 1]) },
                "--k" => settings with { K = int.Parse(args[i + 1]) },
                "--metric" => settings with { Metric = Enum.Parse<SimilarityMetric>(args[i + 1], ignoreCase: true) },
                _ => throw new ArgumentException($"unknown option {args[i]}; use --rows, --dim, --batch, --k, --metric"),
            };
        }

        return settings;
    }
}
