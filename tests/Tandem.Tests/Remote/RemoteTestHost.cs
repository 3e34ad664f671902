using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Remote;
using Tandem.Remote.Internal;
using Tandem.Remote.Internal.Supervision;
using Tandem.Similarity;

namespace Tandem.Tests.Remote;

/// <summary>
/// A service provider with Tandem on the Remote backend and its own
/// supervised workers (shared-nothing topology); disposing it stops them.
/// </summary>
internal sealed class RemoteTestHost : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    public RemoteTestHost(Action<RemoteOptions>? configure = null, bool fallback = false, Action<TandemOptions>? tandem = null, Action<IServiceCollection>? services = null)
    {
        var collection = new ServiceCollection();
        services?.Invoke(collection);
        _services = collection
            .AddTandem(o =>
            {
                o.Backend = BackendKind.Remote;
                o.FallbackToManaged = fallback;
                tandem?.Invoke(o);
            })
            .AddTandemRemote(o =>
            {
                o.WorkerPath = WorkerBinary.Path;
                o.DrainGrace = TimeSpan.FromSeconds(5);
                configure?.Invoke(o);
            })
            .BuildServiceProvider();
        Search = _services.GetRequiredService<ISimilaritySearch>();
        Hashing = _services.GetRequiredService<IBlake3Hashing>();
        Admin = _services.GetRequiredService<IWorkerPoolAdmin>();
        Client = _services.GetRequiredService<RemoteClient>();
    }

    public IServiceProvider Services => _services;

    public ISimilaritySearch Search { get; }

    public IBlake3Hashing Hashing { get; }

    public IWorkerPoolAdmin Admin { get; }

    internal RemoteClient Client { get; }

    public async Task<IReadOnlyList<WorkerInfo>> StartAsync()
    {
        await Admin.StartAsync();
        return Admin.Workers;
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> on the pool holds, re-checking
    /// it at each change the pool signals; fails after <paramref name="timeout"/> (default 30 s).
    /// </summary>
    public async Task Eventually(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var watch = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        while (true)
        {
            // Taken before the check, so a change in between is not missed.
            var change = Client.Pool.NextChange;
            if (condition())
            {
                return;
            }

            try
            {
                await change.WaitAsync(limit - watch.Elapsed);
            }
            catch (Exception e) when (e is TimeoutException or ArgumentOutOfRangeException)
            {
                Assert.Fail($"timed out waiting until {what}");
            }
        }
    }

    public static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// Sends <paramref name="signal"/>; for SIGSTOP, returns once the process
    /// is stopped: kill() returns before every thread of it has stopped, and a
    /// worker answers a tiny call in microseconds, well inside that gap.
    /// </summary>
    public static void Signal(int pid, int signal)
    {
        Signals.Send(pid, signal);
        if (signal != Signals.Stop)
        {
            return;
        }

        var watch = Stopwatch.StartNew();
        while (!AllThreadsStopped(pid))
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"process {pid} did not stop within 10 s of SIGSTOP");
            Thread.Yield();
        }
    }

    /// <summary>Whether every thread of <paramref name="pid"/> is stopped (state T in /proc), or the process is gone.</summary>
    private static bool AllThreadsStopped(int pid)
    {
        try
        {
            foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                if (stat[stat.LastIndexOf(')') + 2] is not ('T' or 't'))
                {
                    return false;
                }
            }

            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
