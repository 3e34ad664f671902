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
using Tandem.Internal.Managed;
using Tandem.Kernels;
using Tandem.Internal.Pricing;
using Tandem.Internal.Similarity;
using Tandem.Native;
using Tandem.Pricing;
using Tandem.Similarity;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Tandem's kernel facades, the generic invoker, and the user's kernel contracts and managed twins.</summary>
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
        // The reference kernels' twins are registered like a user's: nothing lists them elsewhere.
        foreach (var twin in KernelCatalog.ReferenceTwins())
        {
            AddTwin(services, twin.GetType());
        }

        AddTwin(services, typeof(ManagedCollectionKind));
        services.TryAddSingleton(sp =>
        {
            var twins = new List<IManagedKernel>();
            var stateTwins = new List<IManagedStateKind>();
            foreach (var type in sp.GetServices<ManagedTwinRegistration>().Select(r => r.Type).Distinct())
            {
                var twin = sp.GetRequiredService(type);
                if (twin is IManagedKernel kernel)
                {
                    twins.Add(kernel);
                }
                else
                {
                    stateTwins.Add((IManagedStateKind)twin);
                }
            }

            return new KernelCatalog(sp.GetServices<KernelContractSet>(), twins, stateTwins);
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TandemOptions>, KernelCatalogValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TandemOptions>, KernelLibrariesValidator>());
        services.TryAddSingleton(sp => new KernelBackends(
            sp.GetRequiredService<IOptionsMonitor<TandemOptions>>(),
            sp.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance,
            time: sp.GetService<TimeProvider>(),
            meterFactory: sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(),
            remote: sp.GetService<IRemoteBackendSource>()?.Backend,
            catalog: sp.GetRequiredService<KernelCatalog>()));
        services.TryAddSingleton<IKernelInvoker>(sp => new KernelInvoker(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<IStateRepository>(sp => new Tandem.Internal.States.StateRepositoryService(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<ISimilaritySearch>(sp => new SimilaritySearch(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<IOptionPricing>(sp => new OptionPricing(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<IBlake3Hashing>(sp => new Blake3Hashing(sp.GetRequiredService<KernelBackends>()));
        services.TryAddSingleton<INativeLibraryAdmin>(sp => sp.GetRequiredService<KernelBackends>().NativeLibraries);
        services.TryAddSingleton<IKernelRouting>(sp => sp.GetRequiredService<KernelBackends>());
        return services;
    }

    /// <summary>
    /// Declares the contracts of a kernel library (typically the generated
    /// <c>Contracts</c> of its class), so the host knows its kernels: the native
    /// library and the workers are checked against them, and managed twins of
    /// them are accepted.
    /// </summary>
    public static IServiceCollection AddKernelContracts(this IServiceCollection services, KernelContractSet contracts)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(contracts);
        services.AddSingleton(contracts);
        return services;
    }

    /// <summary>
    /// Loads kernel library <paramref name="library"/> in process beside
    /// libtandem.so (<see cref="TandemOptions.KernelLibraries"/>): a path, or a
    /// name (<c>ewma</c> for <c>libewma.so</c>) found next to the application
    /// or in a referenced package's <c>runtimes/&lt;rid&gt;/native</c> folder.
    /// Declare its contracts too (<see cref="AddKernelContracts"/>, usually
    /// through the generated registration). Startup fails, naming the
    /// libraries, when it is missing, not a Tandem library, of another ABI
    /// major, or publishes a kernel name another library publishes.
    /// </summary>
    public static IServiceCollection AddKernelLibrary(this IServiceCollection services, string library)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(library);
        services.Configure<TandemOptions>(options =>
        {
            if (!options.KernelLibraries.Contains(library, StringComparer.Ordinal))
            {
                options.KernelLibraries.Add(library);
            }
        });
        return services;
    }

    /// <summary>
    /// Registers <typeparamref name="TKernel"/> as the managed twin of its kernel.
    /// Startup fails, naming the twin, when the host knows no kernel of that
    /// name or knows it with another descriptor hash.
    /// </summary>
    public static IServiceCollection AddManagedKernel<TKernel>(this IServiceCollection services)
        where TKernel : ManagedKernel
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddTwin(services, typeof(TKernel));
    }

    /// <summary>Registers <typeparamref name="TKind"/> as the managed twin of its state kind (startup fails when no known library declares that kind).</summary>
    public static IServiceCollection AddManagedStateKind<TKind>(this IServiceCollection services)
        where TKind : ManagedStateKind
    {
        ArgumentNullException.ThrowIfNull(services);
        return AddTwin(services, typeof(TKind));
    }

    /// <summary>A twin is a singleton of its own type (resolvable by the application too), listed for the catalog.</summary>
    private static IServiceCollection AddTwin(IServiceCollection services, Type type)
    {
        services.TryAddSingleton(type);
        services.AddSingleton(new ManagedTwinRegistration(type));
        return services;
    }
}
