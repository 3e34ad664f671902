using Microsoft.Extensions.DependencyInjection;
using Tandem.Remote;
using Tandem.Remote.Internal;
using Tandem.Remote.Internal.Supervision;

namespace Tandem.Tests.Remote;

/// <summary>Where the tests find tandem-worker: $TANDEM_WORKER_PATH, else the repository's release build.</summary>
internal static class WorkerBinary
{
    public static string Path => Shared.RepositoryPaths.WorkerPath;
}

/// <summary>
/// Two tandem-worker processes on temporary sockets, started once for all
/// Remote contract suites (the pooled topology: the suites connect to them
/// as external endpoints) and stopped at the end.
/// </summary>
public sealed class RemoteWorkersFixture : IAsyncLifetime
{
    private readonly List<WorkerProcess> _processes = [];
    private readonly DirectoryInfo _sockets = Directory.CreateTempSubdirectory("tandem-test-workers-");

    /// <summary>The fixture of the running collection (suites read it from their base constructor).</summary>
    internal static RemoteWorkersFixture? Current { get; private set; }

    public IReadOnlyList<string> Endpoints { get; private set; } = [];

    public async Task InitializeAsync()
    {
        var options = new RemoteOptions { DrainGrace = TimeSpan.FromSeconds(2) };
        var endpoints = new List<string>();
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var process = WorkerProcess.Start(WorkerBinary.Path, options, _sockets.FullName, $"w{i}", "contract");
                _processes.Add(process);
                endpoints.Add(await process.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None));
            }
        }
        catch
        {
            await DisposeAsync();
            throw;
        }

        Endpoints = endpoints;
        Current = this;
    }

    public void AddRemote(IServiceCollection services) =>
        services.AddTandemRemote(o =>
        {
            foreach (var endpoint in Endpoints)
            {
                o.Endpoints.Add(endpoint);
            }
        });

    public async Task DisposeAsync()
    {
        Current = null;
        foreach (var process in _processes)
        {
            await process.StopAsync(TimeSpan.FromSeconds(5));
            process.Dispose();
        }

        _sockets.Delete(recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class RemoteWorkersCollection : ICollectionFixture<RemoteWorkersFixture>
{
    public const string Name = "Remote workers";
}
