using Microsoft.Extensions.DependencyInjection;
using Tandem.Remote;
using Tandem.Similarity;

namespace Tandem.Benchmarks;

/// <summary>
/// Single-query top-k (n = 200,000, dim = 384, k = 10) from 256 concurrent
/// callers, the same pipeline (batching on) in one run: the Native backend in
/// process versus a Remote pool of 2 supervised workers over Unix sockets.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- pool
/// </summary>
internal static class PoolThroughput
{
    private const int Callers = 256;
    private const int CallsPerCaller = 8;

    public static async Task RunAsync()
    {
        var random = new Random(11);
        var vectors = GaussianData.Create(random, LoadGenerator.Rows * LoadGenerator.Dim);
        var queries = Enumerable.Range(0, 64).Select(_ => GaussianData.Create(random, LoadGenerator.Dim)).ToArray();
        Console.WriteLine($"pool: similarity.topk, n = {LoadGenerator.Rows:N0}, dim = {LoadGenerator.Dim}, one query per call, k = 10, {Callers} callers x {CallsPerCaller} calls, batching on, {Environment.ProcessorCount} cores");

        void Configure(TandemOptions o)
        {
            o.Batching.Enabled = true;
            o.Batching.MaxBatchRows = 64;
            o.Batching.MaxQueueDelay = TimeSpan.FromMilliseconds(1);
            o.Batching.QueueLimit = 100_000;
        }

        await using (var native = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = BackendKind.Native;
            o.FallbackToManaged = false;
            Configure(o);
        }).BuildServiceProvider())
        {
            await RunOneAsync("Native (in process)", native, vectors, queries);
        }

        await using var remote = RemoteBench.Services(RemoteTransport.UnixSocket, workers: 2, tandem: Configure);
        await RemoteBench.StartAsync(remote);
        await RunOneAsync("Remote, 2 workers over UDS", remote, vectors, queries);
    }

    private static async Task RunOneAsync(string name, ServiceProvider services, float[] vectors, float[][] queries)
    {
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("load", vectors, LoadGenerator.Dim);
        await LoadGenerator.Closed(search, queries, callers: 16, callsPerCaller: 2);
        var (elapsed, latencies, rejected) = await LoadGenerator.Closed(search, queries, Callers, CallsPerCaller);
        LoadGenerator.Report($"{name}, rejected {rejected}", elapsed, latencies);
    }
}
