using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Native;

namespace Tandem.Internal.Native;

/// <summary>
/// Every native kernel library in process: libtandem.so first, then those of
/// <see cref="TandemOptions.KernelLibraries"/>, each in a
/// <see cref="NativeLibraryHost"/> of its own (so each hot-swaps alone). A
/// kernel or state kind belongs to the one library that publishes it; a name
/// two libraries publish is refused on Native for both, naming them (startup
/// validation refuses it earlier, see <see cref="Problems"/>).
/// </summary>
internal sealed class NativeLibrarySet : INativeLibraryAdmin, IDisposable
{
    private readonly IOptionsMonitor<TandemOptions> _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IReadOnlyList<KernelDescriptor> _contracts;
    private readonly uint _abiMajor;
    private readonly Lazy<NativeLibraryHost[]> _hosts;
    private Owners? _owners;

    // Per descriptor, where its kernel was found last (see Kernel(KernelDescriptor)); forgets descriptors nobody holds.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<KernelDescriptor, Route> _routes = new();

    /// <param name="primary">Loads libtandem.so (generation 1, on first use).</param>
    /// <param name="contracts">Descriptors every library is checked against.</param>
    /// <param name="abiMajor">ABI major every library must speak (a test seam).</param>
    public NativeLibrarySet(Func<NativeRuntime> primary, IOptionsMonitor<TandemOptions> options, ILogger logger, TimeProvider time, IReadOnlyList<KernelDescriptor> contracts, uint abiMajor = KernelContracts.AbiMajor)
    {
        _options = options;
        _logger = logger;
        _time = time;
        _contracts = contracts;
        _abiMajor = abiMajor;
        Primary = Host(primary, o => o.NativeLibraryPath);
        _hosts = new Lazy<NativeLibraryHost[]>(CreateHosts);
    }

    /// <summary>libtandem.so's host.</summary>
    public NativeLibraryHost Primary { get; }

    /// <summary>Every host, libtandem.so's first (the others are created on first use).</summary>
    public IReadOnlyList<NativeLibraryHost> Hosts => _hosts.Value;

    public NativeLibraryInfo Current => Primary.Current;

    public IReadOnlyList<NativeLibraryInfo> Libraries => [.. Hosts.Select(h => h.Current)];

    /// <summary>The host of the library that publishes <paramref name="kernel"/>, or null with the reason none serves it.</summary>
    public NativeLibraryHost? HostFor(string kernel, out TandemException? refusal)
    {
        var owners = CurrentOwners();
        if (owners.Kernels.TryGetValue(kernel, out var index))
        {
            refusal = null;
            return Hosts[index];
        }

        refusal = owners.Refusals.TryGetValue(kernel, out var clash) ? new TandemException(TandemStatusCode.FailedPrecondition, clash, kernel, BackendKind.Native) : Unpublished(kernel);
        return null;
    }

    /// <summary>
    /// The kernel of <paramref name="descriptor"/>'s name as the current
    /// generation of the library that publishes it serves it, or null with
    /// the reason it is refused. Remembered per descriptor until the owners
    /// of names or that library's generation change, so a call pays two
    /// reference comparisons instead of two lookups by name.
    /// </summary>
    public NativeKernel? Kernel(KernelDescriptor descriptor, out TandemException? refusal)
    {
        var owners = CurrentOwners();
        if (_routes.TryGetValue(descriptor, out var route) && ReferenceEquals(route.Owners, owners) && ReferenceEquals(route.Generation, route.Host.Generation))
        {
            refusal = null;
            return route.Kernel;
        }

        if (!owners.Kernels.TryGetValue(descriptor.Name, out var index))
        {
            return Kernel(descriptor.Name, out refusal);
        }

        var host = Hosts[index];
        var generation = host.Generation;
        var kernel = generation.Runtime.Kernel(descriptor.Name, out refusal);
        if (kernel is not null)
        {
            _routes.AddOrUpdate(descriptor, new Route(owners, host, generation, kernel));
        }

        return kernel;
    }

    /// <summary>The kernel as the library that publishes it serves it, or null with the reason it is refused.</summary>
    public NativeKernel? Kernel(string kernel, out TandemException? refusal) =>
        HostFor(kernel, out refusal) is { } host ? host.Generation.Runtime.Kernel(kernel, out refusal) : null;

    /// <summary>The host of the library that publishes state kind <paramref name="kind"/>, else libtandem.so's (which then says what it lacks).</summary>
    public NativeLibraryHost HostForStateKind(string kind, string? kernel)
    {
        var owners = CurrentOwners();
        if (owners.StateKinds.TryGetValue(kind, out var index))
        {
            return Hosts[index];
        }

        if (owners.Refusals.TryGetValue(StateKindKey(kind), out var clash))
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, clash, kernel, BackendKind.Native);
        }

        return Primary;
    }

    public ValueTask<NativeLibraryInfo> HotSwapAsync(string libraryPath, CancellationToken cancellationToken = default) =>
        Primary.HotSwapAsync(libraryPath, cancellationToken);

    public ValueTask<NativeLibraryInfo> HotSwapAsync(string library, string libraryPath, CancellationToken cancellationToken = default)
    {
        foreach (var host in Hosts)
        {
            if (host.Generation.Runtime.KernelSet?.LibraryName == library)
            {
                return host.HotSwapAsync(libraryPath, cancellationToken);
            }
        }

        var loaded = string.Join(", ", Hosts.Select(h => $"'{h.Generation.Runtime.Name}'"));
        throw new TandemException(TandemStatusCode.NotFound, $"no kernel library named '{library}' is loaded (loaded: {loaded}); add it to Tandem:KernelLibraries to load it at the next start", backend: BackendKind.Native);
    }

    public void Dispose()
    {
        Primary.Dispose();
        if (_hosts.IsValueCreated)
        {
            foreach (var host in _hosts.Value.Skip(1))
            {
                host.Dispose();
            }
        }
    }

    /// <summary>
    /// What keeps <paramref name="options"/>' kernel libraries from serving
    /// together: a library that cannot be found or loaded, or a kernel or
    /// state-kind name two libraries publish. Empty when there are none to
    /// check (no <see cref="TandemOptions.KernelLibraries"/>); libtandem.so
    /// itself may be missing, since Managed then serves its kernels.
    /// </summary>
    public static IReadOnlyList<string> Problems(TandemOptions options, IReadOnlyList<KernelDescriptor> contracts)
    {
        var problems = new List<string>();
        if (options.KernelLibraries.Count is 0 or > KernelLibraryLocator.MaxLibraries)
        {
            // Too many is the option validator's to report; loading them is not worth it.
            return problems;
        }

        var sets = new List<(string Library, KernelSet? Set)>();
        var primary = NativeRuntime.Load(options.NativeLibraryPath, contracts, NullLogger.Instance);
        sets.Add((Describe(primary), primary.KernelSet));
        foreach (var library in options.KernelLibraries)
        {
            if (KernelLibraryLocator.Resolve(library, out var searched) is not { } path)
            {
                problems.Add($"Tandem:KernelLibraries: {KernelLibraryLocator.NotFound(library, searched)}.");
                continue;
            }

            var runtime = NativeRuntime.Load(path, contracts, NullLogger.Instance);
            if (runtime.LoadError is { } error)
            {
                problems.Add($"Tandem:KernelLibraries: kernel library '{library}' ({path}) is refused: {error.Message}.");
                continue;
            }

            sets.Add((Describe(runtime), runtime.KernelSet));
        }

        problems.AddRange(OwnersOf(sets).Refusals.Values.Distinct(StringComparer.Ordinal).Select(r => $"Tandem:KernelLibraries: {r}."));
        return problems;
    }

    private NativeLibraryHost[] CreateHosts()
    {
        var hosts = new List<NativeLibraryHost> { Primary };
        foreach (var library in _options.CurrentValue.KernelLibraries)
        {
            hosts.Add(Host(() => Load(library), configuredPath: null));
        }

        return [.. hosts];
    }

    private NativeLibraryHost Host(Func<NativeRuntime> load, Func<TandemOptions, string?>? configuredPath) =>
        new(load, _options, _logger, _time, _contracts, _abiMajor, configuredPath)
        {
            Conflicts = Conflicts,
            Swapped = () => Volatile.Write(ref _owners, null),
        };

    private NativeRuntime Load(string library)
    {
        if (KernelLibraryLocator.Resolve(library, out var searched) is { } path)
        {
            return NativeRuntime.Load(path, _contracts, _logger, _abiMajor);
        }

        var error = new TandemException(TandemStatusCode.FailedPrecondition, KernelLibraryLocator.NotFound(library, searched), backend: BackendKind.Native);
        TandemLog.NativeLibraryRefused(_logger, error.Message);
        return NativeRuntime.Refused(error);
    }

    private Owners CurrentOwners()
    {
        if (Volatile.Read(ref _owners) is { } owners)
        {
            return owners;
        }

        owners = OwnersOf(Hosts.Select(h => (Describe(h.Generation.Runtime), h.Generation.Runtime.KernelSet)));
        foreach (var clash in owners.Refusals.Values.Distinct(StringComparer.Ordinal))
        {
            TandemLog.NativeLibraryRefused(_logger, clash);
        }

        Volatile.Write(ref _owners, owners);
        return owners;
    }

    /// <summary>A new build of <paramref name="host"/>'s library may not publish a name another library owns.</summary>
    private string? Conflicts(NativeLibraryHost host, KernelSet next)
    {
        var sets = Hosts.Select(h => h == host ? ($"'{next.LibraryName}' (the new build)", next) : (Describe(h.Generation.Runtime), h.Generation.Runtime.KernelSet));
        return OwnersOf(sets).Refusals.Values.FirstOrDefault();
    }

    private TandemException Unpublished(string kernel)
    {
        if (Primary.Generation.Runtime.LoadError is { } primaryError && Hosts.Count == 1)
        {
            // Only libtandem.so, and it is missing: say that, not that it lacks the kernel.
            return primaryError;
        }

        var loaded = string.Join(", ", Hosts.Select(h => h.Generation.Runtime).Select(r => r.LoadError is null ? $"'{r.Name}'" : $"'{r.Name}' (not loaded: {r.LoadError.Message})"));
        return new TandemException(TandemStatusCode.FailedPrecondition, $"no native kernel library in this process publishes kernel '{kernel}' (libraries: {loaded}); add the library that exports it to Tandem:KernelLibraries", kernel, BackendKind.Native);
    }

    private static string Describe(NativeRuntime runtime) =>
        runtime.LibraryPath is { } path ? $"'{runtime.Name}' ({path})" : $"'{runtime.Name}'";

    private static string StateKindKey(string kind) => "\0state:" + kind;

    /// <summary>Which library (by index) publishes each name; a name published twice is a refusal naming both libraries.</summary>
    private static Owners OwnersOf(IEnumerable<(string Library, KernelSet? Set)> libraries)
    {
        var kernels = new Dictionary<string, int>(StringComparer.Ordinal);
        var kinds = new Dictionary<string, int>(StringComparer.Ordinal);
        var refusals = new Dictionary<string, string>(StringComparer.Ordinal);
        var names = new List<string>();
        foreach (var (library, set) in libraries)
        {
            var index = names.Count;
            names.Add(library);
            foreach (var kernel in set?.Kernels ?? [])
            {
                Claim(kernels, kernel.Name, kernel.Name, "kernel");
            }

            foreach (var kind in set?.StateKinds ?? [])
            {
                Claim(kinds, kind.Name, StateKindKey(kind.Name), "state kind");
            }

            void Claim(Dictionary<string, int> owners, string name, string key, string what)
            {
                if (refusals.ContainsKey(key))
                {
                    return;
                }

                if (owners.Remove(name, out var first))
                {
                    refusals[key] = $"{what} '{name}' is published by two kernel libraries, {names[first]} and {library}; names must be unique across the libraries of one process: drop one library or rename the {what}";
                    return;
                }

                owners[name] = index;
            }
        }

        return new Owners(kernels, kinds, refusals);
    }

    /// <summary>Kernel and state-kind names to the index of their library in <see cref="Hosts"/>, and the names refused.</summary>
    private sealed record Owners(Dictionary<string, int> Kernels, Dictionary<string, int> StateKinds, Dictionary<string, string> Refusals);

    /// <summary>A kernel found for a descriptor, valid while <see cref="Owners"/> and the host's generation are the ones it was found in.</summary>
    private sealed record Route(Owners Owners, NativeLibraryHost Host, NativeGeneration Generation, NativeKernel Kernel);
}
