using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Hashing;
using Tandem.Native;
using Tandem.Pricing;
using Tandem.Remote;
using Tandem.Similarity;

namespace Tandem.Soak;

/// <summary>
/// One Tandem service provider the soak calls, built as an application
/// builds it: configuration (reloadable, so the chaos driver can flip
/// options), <c>AddTandem</c>, and for the Remote target <c>AddTandemRemote</c>
/// with supervised workers.
/// </summary>
internal sealed class Target : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly ConfigurationManager _configuration;
    private readonly Dictionary<string, string?> _defaults;

    private Target(string name, ServiceProvider services, ConfigurationManager configuration, Dictionary<string, string?> defaults)
    {
        Name = name;
        _services = services;
        _configuration = configuration;
        _defaults = defaults;
        Search = services.GetRequiredService<ISimilaritySearch>();
        Pricing = services.GetRequiredService<IOptionPricing>();
        Hashing = services.GetRequiredService<IBlake3Hashing>();
        Native = services.GetRequiredService<INativeLibraryAdmin>();
        Pool = services.GetService<IWorkerPoolAdmin>();
    }

    public string Name { get; }

    public ISimilaritySearch Search { get; }

    public IOptionPricing Pricing { get; }

    public IBlake3Hashing Hashing { get; }

    public INativeLibraryAdmin Native { get; }

    /// <summary>The worker pool (Remote target only).</summary>
    public IWorkerPoolAdmin? Pool { get; }

    public static Target Remote(SoakSettings settings, string workerPath, string sharedMemoryDirectory)
    {
        var defaults = Common(settings);
        defaults["Tandem:Backend"] = nameof(BackendKind.Remote);
        var configuration = Configure(defaults);
        var services = new ServiceCollection()
            .AddTandem(configuration.GetSection("Tandem"))
            .AddTandemRemote(o =>
            {
                o.WorkerPath = workerPath;
                o.WorkerCount = settings.Workers;
                o.SharedMemoryDirectory = sharedMemoryDirectory;
                o.CallDeadline = TimeSpan.FromSeconds(settings.AttemptDeadlineSeconds);
                o.EjectionConsecutiveFailures = 2;
                o.EjectionProbeInterval = TimeSpan.FromMilliseconds(250);
                o.RestartBackoff = TimeSpan.FromMilliseconds(100);
                o.MaxRestartBackoff = TimeSpan.FromSeconds(2);
                o.DrainGrace = TimeSpan.FromSeconds(2);
            })
            .BuildServiceProvider();
        return new Target("remote", services, configuration, defaults);
    }

    public static Target InProcess(SoakSettings settings)
    {
        var defaults = Common(settings);
        defaults["Tandem:Backend"] = nameof(BackendKind.Native);
        defaults["Tandem:NativeHotSwap"] = "true";
        var configuration = Configure(defaults);
        var services = new ServiceCollection().AddTandem(configuration.GetSection("Tandem")).BuildServiceProvider();
        return new Target("native", services, configuration, defaults);
    }

    /// <summary>Sets configuration keys (null removes one) and reloads, as an operator editing appsettings would.</summary>
    public void Reconfigure(IReadOnlyDictionary<string, string?> values)
    {
        foreach (var (key, value) in values)
        {
            _configuration[key] = value;
        }

        ((IConfigurationRoot)_configuration).Reload();
    }

    /// <summary>Back to the configuration the target started with.</summary>
    public void RestoreDefaults(IEnumerable<string> keys)
    {
        var values = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            values[key] = _defaults.GetValueOrDefault(key);
        }

        Reconfigure(values);
    }

    public string? Setting(string key) => _configuration[key];

    public ValueTask DisposeAsync() => _services.DisposeAsync();

    private static Dictionary<string, string?> Common(SoakSettings settings) => new(StringComparer.Ordinal)
    {
        ["Tandem:FallbackToManaged"] = "true",
        ["Tandem:CallTimeout"] = TimeSpan.FromSeconds(settings.CallTimeoutSeconds).ToString("c", CultureInfo.InvariantCulture),
    };

    private static ConfigurationManager Configure(Dictionary<string, string?> values)
    {
        var configuration = new ConfigurationManager();
        foreach (var (key, value) in values)
        {
            configuration[key] = value;
        }

        return configuration;
    }
}
