using Microsoft.Extensions.DependencyInjection;
using Tandem.Remote;

namespace Tandem.Benchmarks;

/// <summary>Shared set-up of the Remote benchmarks: supervised workers from this checkout.</summary>
internal static class RemoteBench
{
    public static ServiceProvider Services(RemoteTransport transport, int workers, Action<RemoteOptions>? configure = null, Action<TandemOptions>? tandem = null) => new ServiceCollection()
        .AddTandem(o =>
        {
            o.Backend = BackendKind.Remote;
            o.FallbackToManaged = false;
            tandem?.Invoke(o);
        })
        .AddTandemRemote(o =>
        {
            // TANDEM_BENCH_WORKER runs another build (or a wrapper adding flags) instead of this checkout's.
            o.WorkerPath = Environment.GetEnvironmentVariable("TANDEM_BENCH_WORKER") is { Length: > 0 } other ? other : RepoFile("native/target/release/tandem-worker");
            o.WorkerCount = workers;
            o.Transport = transport;
            configure?.Invoke(o);
        })
        .BuildServiceProvider();

    /// <summary>Starts the workers; returns the first one's process id (for its CPU time).</summary>
    public static async Task<int> StartAsync(ServiceProvider services)
    {
        var admin = services.GetRequiredService<IWorkerPoolAdmin>();
        await admin.StartAsync();
        return admin.Workers[0].ProcessId ?? throw new InvalidOperationException("the benchmark's workers are supervised, so they have process ids");
    }

    public static string RepoFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Tandem.slnx")))
            {
                return Path.Combine(dir.FullName, relative);
            }
        }

        throw new FileNotFoundException("the repository root (Tandem.slnx) was not found above the benchmark binary");
    }
}
