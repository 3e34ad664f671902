namespace Tandem.Server.Admin;

/// <summary>
/// Per-kernel feature flags set at run time: the backend, and whether
/// acceleration is on (off runs the kernel on Managed whatever its backend).
/// They are a configuration source layered over every other that writes
/// <c>Tandem:Kernels:{kernel}:Backend</c>, so Tandem's options monitor applies
/// them to new calls without a restart, exactly as an edited
/// appsettings.json would. Flags live in memory: a restart returns to the
/// configured values.
/// </summary>
internal sealed class KernelFlags(IConfigurationRoot configuration) : ConfigurationProvider, IConfigurationSource
{
    private readonly Dictionary<string, (BackendKind? Backend, bool Acceleration)> _flags = new(StringComparer.Ordinal);

    public IConfigurationProvider Build(IConfigurationBuilder builder) => this;

    /// <summary>The backend a kernel is set to (its flag, else configuration) and whether acceleration is on.</summary>
    public (BackendKind Backend, bool Acceleration) Of(string kernel)
    {
        lock (_flags)
        {
            var (backend, acceleration) = _flags.TryGetValue(kernel, out var flag) ? flag : (null, true);
            return (backend ?? Configured(kernel), acceleration);
        }
    }

    /// <summary>Sets a kernel's flags (null leaves one as it is) and reloads the options.</summary>
    public (BackendKind Backend, bool Acceleration) Set(string kernel, BackendKind? backend, bool? acceleration)
    {
        lock (_flags)
        {
            var current = _flags.TryGetValue(kernel, out var flag) ? flag : (null, true);
            var next = (Backend: backend ?? current.Backend, Acceleration: acceleration ?? current.Acceleration);
            _flags[kernel] = next;
            var key = Key(kernel);
            if (!next.Acceleration)
            {
                Data[key] = nameof(BackendKind.Managed);
            }
            else if (next.Backend is { } chosen)
            {
                Data[key] = chosen.ToString();
            }
            else
            {
                Data.Remove(key);
            }
        }

        OnReload();
        return Of(kernel);
    }

    /// <summary>What the other configuration sources say: the kernel's backend, else the global one, else Native.</summary>
    private BackendKind Configured(string kernel)
    {
        string? kernelValue = null;
        string? globalValue = null;
        foreach (var provider in configuration.Providers)
        {
            // Later providers win, as in IConfiguration itself.
            if (!ReferenceEquals(provider, this))
            {
                kernelValue = provider.TryGet(Key(kernel), out var k) ? k : kernelValue;
                globalValue = provider.TryGet($"{TandemOptions.SectionName}:Backend", out var g) ? g : globalValue;
            }
        }

        return Enum.TryParse<BackendKind>(kernelValue ?? globalValue, ignoreCase: true, out var parsed) ? parsed : BackendKind.Native;
    }

    private static string Key(string kernel) => $"{TandemOptions.SectionName}:Kernels:{kernel}:Backend";
}
