using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem;
using Tandem.Internal.Kernels;
using Tandem.Remote;
using Tandem.Remote.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Tandem's Remote backend (tandem-worker processes over gRPC).</summary>
public static class RemoteServiceCollectionExtensions
{
    /// <summary>
    /// Adds the Remote backend next to <c>AddTandem</c>: kernels configured
    /// with <see cref="BackendKind.Remote"/> run on worker processes, and
    /// <see cref="IWorkerPoolAdmin"/> manages them. Each service provider gets
    /// its own workers; invalid options fail at startup. Dispose the provider
    /// with <c>DisposeAsync</c> (hosts do): stopping the workers is
    /// asynchronous, so a synchronous <c>Dispose</c> throws once they were used.
    /// </summary>
    public static IServiceCollection AddTandemRemote(this IServiceCollection services, Action<RemoteOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<RemoteOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        return AddCore(services, builder);
    }

    /// <summary>Adds the Remote backend with options bound to <paramref name="configuration"/> (for example the "Tandem:Remote" section), read once at start, except that a changed WorkerPath or BuildId rolls the supervised workers onto it.</summary>
    public static IServiceCollection AddTandemRemote(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return AddCore(services, services.AddOptions<RemoteOptions>().Bind(configuration));
    }

    private static IServiceCollection AddCore(IServiceCollection services, OptionsBuilder<RemoteOptions> builder)
    {
        builder.ValidateDataAnnotations().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RemoteOptions>, RemoteOptionsValidator>());
        services.TryAddSingleton(sp => new RemoteClient(
            sp.GetRequiredService<IOptions<RemoteOptions>>(),
            sp.GetRequiredService<IOptionsMonitor<TandemOptions>>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            sp.GetService<TimeProvider>(),
            sp.GetRequiredService<IOptionsMonitor<RemoteOptions>>(),
            // Every kernel the host knows (reference and declared), so user kernels are checked by hash too.
            sp.GetService<KernelCatalog>()?.Descriptors,
            sp.GetService<Tandem.Remote.Internal.Pool.IWorkerAddressResolver>()));
        services.TryAddSingleton<IRemoteBackendSource>(sp => sp.GetRequiredService<RemoteClient>());
        services.TryAddSingleton<IWorkerPoolAdmin>(sp => sp.GetRequiredService<RemoteClient>());
        return services;
    }
}
