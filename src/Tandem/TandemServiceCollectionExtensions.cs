using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem;
using Tandem.Hashing;
using Tandem.Internal;
using Tandem.Internal.Hashing;
using Tandem.Internal.Kernels;
using Tandem.Internal.Pricing;
using Tandem.Internal.Similarity;
using Tandem.Native;
using Tandem.Pricing;
using Tandem.Similarity;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Tandem's kernel facades.</summary>
public static class TandemServiceCollectionExtensions
{
    /// <summary>Adds Tandem with options from <paramref name="configure"/>; invalid options fail at startup.</summary>
    public static IServiceCollection AddTandem(this IServiceCollection services, Action<TandemOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.AddOptions<TandemOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        return AddCore(services, builder);
    }

    /// <summary>Adds Tandem with options bound to <paramref name="configuration"/> (for example the "Tandem" section); changes apply without a restart.</summary>
    public static IServiceCollection AddTandem(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        return AddCore(services, services.AddOptions<TandemOptions>().Bind(configuration));
    }

    private static IServiceCollection AddCore(IServiceCollection services, OptionsBuilder<TandemOptions> builder)
    {
        builder.ValidateDataAnnotations().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TandemOptions>, TandemOptionsValidator>());
        services.TryAddSingleton(sp => new KernelBackends(
            sp.GetRequiredService<IOptionsMonitor<TandemOptions>>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            time: sp.GetService<TimeProvider>(),
            meterFactory: sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
            remote: sp.GetService<IRemoteBackendSource>()?.Backend));
        services.TryAddSingleton<ISimilaritySearch>(sp => new SimilaritySearch(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<IOptionPricing>(sp => new OptionPricing(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<IBlake3Hashing>(sp => new Blake3Hashing(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<INativeLibraryAdmin>(sp => sp.GetRequiredService<KernelBackends>().NativeHost);
        services.TryAddSingleton<IKernelRouting>(sp => sp.GetRequiredService<KernelBackends>());
        return services;
    }
}
