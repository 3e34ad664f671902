using Microsoft.Extensions.DependencyInjection;
using Tandem;
using Tandem.Kernels;
using Tandem.Remote;

namespace Timeseries.Kernels.Tests;

/// <summary>
/// A Tandem host that serves the timeseries kernels on one backend, with no
/// fallback, so a result really comes from the backend under test. It's shared
/// by the tests of one class (an xunit class fixture) and disposed after them,
/// and with it any worker it started.
/// </summary>
public abstract class Backend : IAsyncLifetime
{
    private ServiceProvider? _services;

    public abstract BackendKind Kind { get; }

    public IKernelInvoker Kernels => _services!.GetRequiredService<IKernelInvoker>();

    public async Task InitializeAsync()
    {
        var services = new ServiceCollection();
        Configure(services);
        _services = services.AddTimeseriesKernels().BuildServiceProvider();
        await StartAsync(_services);
    }

    public async Task DisposeAsync()
    {
        if (_services is not null)
        {
            await _services.DisposeAsync();
        }
    }

    /// <summary>Adds Tandem, set up for this backend.</summary>
    protected abstract void Configure(IServiceCollection services);

    protected virtual Task StartAsync(IServiceProvider services) => Task.CompletedTask;

    protected void AddTandem(IServiceCollection services, Action<TandemOptions>? configure = null) => services.AddTandem(o =>
    {
        o.Backend = Kind;
        o.FallbackToManaged = false;
        configure?.Invoke(o);
    });
}

/// <summary>The managed twin, in process.</summary>
public sealed class ManagedBackend : Backend
{
    public override BackendKind Kind => BackendKind.Managed;

    protected override void Configure(IServiceCollection services) => AddTandem(services);
}

/// <summary>The Rust kernel, in process.</summary>
public sealed class NativeBackend : Backend
{
    public override BackendKind Kind => BackendKind.Native;

    // Today the host loads one native library. When AddKernelLibrary lands,
    // this becomes AddTandem(services).AddKernelLibrary(TimeseriesLibrary.Path),
    // and Tandem's reference kernels stay native beside this library.
    protected override void Configure(IServiceCollection services) => AddTandem(services, o => o.NativeLibraryPath = TimeseriesLibrary.Path);
}

/// <summary>The Rust kernel, in one supervised tandem-worker started with <c>--kernels</c> for the library.</summary>
public sealed class RemoteBackend : Backend
{
    public override BackendKind Kind => BackendKind.Remote;

    protected override void Configure(IServiceCollection services)
    {
        AddTandem(services);
        // The pool finds tandem-worker next to the tests, where the Tandem.Remote package put it.
        services.AddTandemRemote(o =>
        {
            o.WorkerCount = 1;
            o.KernelLibraries.Add(TimeseriesLibrary.Path);
        });
    }

    protected override async Task StartAsync(IServiceProvider services)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await services.GetRequiredService<IWorkerPoolAdmin>().StartAsync(timeout.Token);
    }
}
