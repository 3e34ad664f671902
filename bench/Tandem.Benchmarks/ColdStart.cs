using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// Issue 14's cold start, in one run: a collection (200,000 × 384 f32 by
/// default, 307 MB) made servable from the state repository — loaded
/// memory-mapped after its checksum is verified — against today's path of
/// building it from vectors the caller uploads, in process (native) and on
/// two supervised workers (Remote: the upload copied into shared memory and
/// replicated into each worker, against each worker loading the file by
/// name). Each run is a fresh Tandem host, timed to the first search
/// answered. "page cache dropped" runs evict the file first
/// (<c>/proc/sys/vm/drop_caches</c>, root only) so the load reads the disk.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- coldstart [rows] [dim] [runs]
/// </summary>
internal static class ColdStart
{
    public static async Task RunAsync(string[] args)
    {
        var rows = args.Length > 1 && int.TryParse(args[1], out var n) ? n : 200_000;
        var dim = args.Length > 2 && int.TryParse(args[2], out var d) ? d : 384;
        var runs = args.Length > 3 && int.TryParse(args[3], out var r) ? r : 5;
        var vectors = new float[(long)rows * dim];
        var random = new Random(14);
        for (var i = 0; i < vectors.Length; i++)
        {
            vectors[i] = (float)(random.NextDouble() * 2 - 1);
        }

        var query = vectors.AsMemory(0, dim);
        using var repository = new Tandem.Tests.Shared.TempStateRepository();
        var root = repository.Root;
        await using (var writer = Host(BackendKind.Native, root))
        {
            var store = Stopwatch.GetTimestamp();
            await writer.GetRequiredService<ISimilaritySearch>().StoreCollectionAsync("c", "coldstart", 1, vectors, dim);
            Console.WriteLine($"coldstart: {rows} x {dim} f32 ({vectors.Length * 4L / 1e6:F0} MB); storing it once took {Stopwatch.GetElapsedTime(store).TotalMilliseconds:F0} ms (build, write, fsync); {runs} runs each, {Environment.ProcessorCount} cores, {MachineFacts.CpuModel()}, load average {MachineFacts.LoadAverage()}");
        }

        var canDrop = File.Exists("/proc/sys/vm/drop_caches") && Environment.UserName == "root";
        Console.WriteLine($"{"path",-52} {"median ms",10} {"min ms",8}");
        Print("native: create from uploaded vectors", await MeasureAsync(runs, () => Host(BackendKind.Native, null), s => s.CreateCollectionAsync("c", vectors, dim), query));
        Print("native: load from the repository (page cache warm)", await MeasureAsync(runs, () => Host(BackendKind.Native, root), s => s.LoadCollectionAsync("c", "coldstart"), query));
        if (canDrop)
        {
            Print("native: load from the repository (page cache dropped)", await MeasureAsync(runs, () => Host(BackendKind.Native, root), s => s.LoadCollectionAsync("c", "coldstart"), query, DropPageCache));
        }

        Print("remote x2: upload, shared memory, replicate", await MeasureAsync(runs, () => Host(BackendKind.Remote, null), s => s.CreateCollectionAsync("c", vectors, dim), query));
        Print("remote x2: workers load from the repository", await MeasureAsync(runs, () => Host(BackendKind.Remote, root), s => s.LoadCollectionAsync("c", "coldstart"), query));
    }

    private static ServiceProvider Host(BackendKind backend, string? repository) =>
        backend == BackendKind.Remote
            ? RemoteBench.Services(Tandem.Remote.RemoteTransport.UnixSocket, workers: 2, tandem: o => o.StateRepository = repository)
            : new ServiceCollection().AddTandem(o =>
            {
                o.Backend = backend;
                o.FallbackToManaged = false;
                o.StateRepository = repository;
            }).BuildServiceProvider();

    /// <summary>Median and minimum of the time from a started host to the first search answered.</summary>
    private static async Task<(double Median, double Min)> MeasureAsync(int runs, Func<ServiceProvider> host, Func<ISimilaritySearch, ValueTask<SimilarityCollectionInfo>> make, ReadOnlyMemory<float> query, Action? before = null)
    {
        var times = new double[runs];
        for (var i = -1; i < runs; i++)
        {
            await using var services = host();
            if (services.GetService<Tandem.Remote.IWorkerPoolAdmin>() is { } pool)
            {
                await pool.StartAsync();
            }

            var search = services.GetRequiredService<ISimilaritySearch>();
            // A first tiny search starts the backend, so the run times the collection alone.
            await search.CreateCollectionAsync("warm", new float[query.Length], query.Length);
            await search.TopKAsync("warm", query, 1);
            before?.Invoke();
            var start = Stopwatch.GetTimestamp();
            await make(search);
            await search.TopKAsync("c", query, 10);
            if (i >= 0)
            {
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }

        Array.Sort(times);
        return (times[runs / 2], times[0]);
    }

    private static void DropPageCache()
    {
        File.WriteAllText("/proc/sys/vm/drop_caches", "1");
    }

    private static void Print(string name, (double Median, double Min) ms) =>
        Console.WriteLine($"{name,-52} {ms.Median,10:F1} {ms.Min,8:F1}");
}
