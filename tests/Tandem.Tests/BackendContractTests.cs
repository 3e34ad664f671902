using Microsoft.Extensions.DependencyInjection;

namespace Tandem.Tests;

/// <summary>
/// Base of every kernel's contract suite: the tests are written once against
/// <typeparamref name="TService"/> and each subclass picks the backend
/// (no fallback, so a test always runs where it says). The provider is
/// disposed asynchronously, as a host does (the Remote client has no
/// synchronous Dispose).
/// </summary>
public abstract class BackendContractTests<TService> : IAsyncLifetime
    where TService : notnull
{
    private readonly ServiceProvider _services;

    protected BackendContractTests(Action<TandemOptions>? configure = null)
    {
        var services = new ServiceCollection().AddTandem(o =>
        {
            o.Backend = Backend;
            o.FallbackToManaged = false;
            configure?.Invoke(o);
        });
        AddBackend(services);
        _services = services.BuildServiceProvider();
        Sut = _services.GetRequiredService<TService>();
    }

    protected abstract BackendKind Backend { get; }

    /// <summary>Registers what the backend needs beyond <c>AddTandem</c> (Remote: <c>AddTandemRemote</c>); called from the constructor.</summary>
    protected virtual void AddBackend(IServiceCollection services)
    {
    }

    protected TService Sut { get; }

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _services.DisposeAsync().AsTask();
}
