using Microsoft.Extensions.DependencyInjection;

namespace Tandem.Testing;

/// <summary>
/// The service providers (one per backend, the managed reference included)
/// that the tests of one class derived from <see cref="KernelContractTests"/>
/// share, so workers start once per class, not once per test. xunit creates
/// it as the class fixture and disposes it, stopping every worker, after the
/// class's last test; take it in your constructor and pass it to the base.
/// </summary>
public sealed class KernelTestHosts : IAsyncLifetime
{
    private readonly Dictionary<BackendKind, Task<ServiceProvider>> _hosts = [];
    private readonly Lock _gate = new();
    private bool _disposed;

    /// <inheritdoc/>
    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Disposes every provider built (asynchronously, as the Remote backend's workers require).</summary>
    public async Task DisposeAsync()
    {
        Task<ServiceProvider>[] hosts;
        lock (_gate)
        {
            _disposed = true;
            hosts = [.. _hosts.Values];
            _hosts.Clear();
        }

        foreach (var host in hosts)
        {
            if (host.IsCompletedSuccessfully)
            {
                await host.Result.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                // A build still running or failed: a failed one disposed what it made.
                try
                {
                    await (await host.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception) when (host.IsFaulted)
                {
                }
            }
        }
    }

    /// <summary>The provider of <paramref name="backend"/>, built by <paramref name="build"/> the first time (a failed build fails every test that needs it, with its error).</summary>
    internal Task<ServiceProvider> GetAsync(BackendKind backend, Func<BackendKind, Task<ServiceProvider>> build)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_hosts.TryGetValue(backend, out var host))
            {
                host = build(backend);
                _hosts.Add(backend, host);
            }

            return host;
        }
    }
}
