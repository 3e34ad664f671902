using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Tandem.Remote;
using Tandem.Server.Admin;
using Tandem.Server.Collections;
using Tandem.Server.Demo;
using Tandem.Similarity;

namespace Tandem.Server.Hosting;

/// <summary>
/// Startup after the listener is up: starts the worker pool (with --workers),
/// loads the collections the state repository holds, creates and warms the
/// demo collection (with --demo, unless it was loaded), then marks the
/// service ready and prints where the dashboard is.
/// </summary>
internal sealed class StartupWork(
    IServiceProvider services,
    IOptions<ServerOptions> options,
    CollectionCatalog catalog,
    StartupState startup,
    AdminToken token,
    IHostApplicationLifetime lifetime,
    ILogger<StartupWork> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var server = options.Value;
        string? failure = null;
        try
        {
            if (server.Workers > 0 && services.GetService<IWorkerPoolAdmin>() is { } pool)
            {
                await pool.StartAsync(stoppingToken);
            }

            // Collections in the state repository come back before the service is ready.
            await catalog.SyncWithRepositoryAsync(stoppingToken);
            catalog.StartRepositorySync(server.Collections.RepositorySyncInterval);
            if (server.Demo.Enabled && !catalog.TryGet(server.Demo.Collection, out _))
            {
                var demo = server.Demo;
                var vectors = DemoData.UnitVectors(demo.Vectors, demo.Dimension, DemoData.CollectionSeed);
                await catalog.CreateAsync(demo.Collection, vectors, demo.Dimension, null, stoppingToken);
                // Warm the collection: the first search pays page faults and thread start-up.
                await catalog.SearchAsync(demo.Collection, vectors.AsMemory(0, demo.Dimension), 10, SimilarityMetric.Cosine, stoppingToken);
            }
        }
        catch (Exception e) when (e is TandemException or InvalidOperationException or Api.HttpProblemException)
        {
            failure = e.Message;
            ServerLog.DemoSetupFailed(logger, e);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }

        startup.Complete(failure);
        await WaitStartedAsync(stoppingToken);
        PrintBanner();
    }

    private async Task WaitStartedAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);
    }

    private void PrintBanner()
    {
        var address = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (address is null)
        {
            return;
        }

        var mode = options.Value.Workers > 0 ? $"Remote pool of {options.Value.Workers} tandem-worker processes" : "in-process native library (managed fallback)";
        Console.WriteLine();
        Console.WriteLine($"  Tandem.Server is ready on {address} — kernels run on the {mode}.");
        // A configured token is a secret the operator already has: keep it out of stdout and logs.
        Console.WriteLine(token.Generated ? $"  Dashboard:   {address}/#token={token.Value}" : $"  Dashboard:   {address}/#token=<Server:Admin:Token>");
        Console.WriteLine($"  API (OpenAPI): {address}/openapi/v1.json   Metrics: {address}/metrics");
        if (token.Generated)
        {
            Console.WriteLine($"  Admin token (generated; set Server:Admin:Token to fix it): {token.Value}");
        }

        Console.WriteLine("  Press Ctrl-C to stop.");
        Console.WriteLine();
    }
}
