using System.Text;
using Microsoft.Extensions.Logging;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;

namespace Tandem.Internal.Native;

/// <summary>
/// One loaded libtandem.so: its ABI version checked, its kernel set read and
/// compared with the descriptors this build expects. A kernel whose
/// descriptor differs is refused (FAILED_PRECONDITION) and never called.
/// </summary>
internal sealed unsafe class NativeRuntime
{
    /// <summary>Environment variable naming libtandem.so explicitly.</summary>
    public const string LibraryPathVariable = "TANDEM_NATIVE_LIBRARY";

    /// <summary>The library's file name, also the name probed when no path is known.</summary>
    public const string LibraryFileName = "libtandem.so";

    private readonly Dictionary<string, NativeKernel> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TandemException> _refusals = new(StringComparer.Ordinal);

    private readonly NativeLibraryBinding? _binding;

    private NativeRuntime(NativeLibraryBinding? binding, TandemException? loadError)
    {
        _binding = binding;
        LoadError = loadError;
    }

    /// <summary>A library that could not even be opened, for <paramref name="error"/>.</summary>
    public static NativeRuntime Refused(TandemException error) => new(null, error);

    /// <summary>Why the whole library is unusable (missing, wrong ABI), or null.</summary>
    public TandemException? LoadError { get; }

    /// <summary>The library's exports; only valid when <see cref="LoadError"/> is null.</summary>
    public NativeLibraryBinding Binding => _binding ?? throw LoadError!;

    /// <summary>The file the library was loaded from, or null when it was not found.</summary>
    public string? LibraryPath => _binding?.Path;

    public NativeRuntimeInfo Info { get; private set; }

    public KernelSet? KernelSet { get; private set; }

    /// <summary>The name the library gives itself (its crate), or its file name when it could not say.</summary>
    public string Name => KernelSet?.LibraryName is { Length: > 0 } name ? name : Path.GetFileName(LibraryPath) ?? LibraryFileName;

    /// <summary>Whether the library publishes <paramref name="kernel"/> (matching this build's contract or not).</summary>
    public bool Publishes(string kernel) => KernelSet?.Kernels.Any(k => k.Name == kernel) ?? false;

    /// <summary>
    /// Loads the library and checks it against <paramref name="expected"/>.
    /// A null path means <see cref="LibraryPathVariable"/>, then
    /// libtandem.so next to the application, then the loader's search path.
    /// </summary>
    public static NativeRuntime Load(string? libraryPath, IReadOnlyList<KernelDescriptor> expected, ILogger logger, uint abiMajor = KernelContracts.AbiMajor)
    {
        NativeLibraryBinding binding;
        uint version;
        try
        {
            binding = Open(libraryPath);
            version = binding.tandem_abi_version();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            var error = libraryPath is null || Path.GetFileName(libraryPath) == LibraryFileName
                ? new TandemException(TandemStatusCode.FailedPrecondition, $"the native library libtandem.so could not be loaded ({e.GetType().Name}); build it with 'make build' or set {LibraryPathVariable}", backend: BackendKind.Native, innerException: e)
                : new TandemException(TandemStatusCode.FailedPrecondition, e is EntryPointNotFoundException
                    ? $"the kernel library '{libraryPath}' could not be loaded ({e.GetType().Name}): it is not a Tandem kernel library (it exports no tandem_abi_version); build it as a cdylib with tandem_sdk::export!"
                    : $"the kernel library '{libraryPath}' could not be loaded ({e.GetType().Name}): {e.Message}", backend: BackendKind.Native, innerException: e);
            TandemLog.NativeLibraryRefused(logger, error.Message);
            return new NativeRuntime(null, error);
        }

        if (CheckAbi(version, abiMajor, Path.GetFileName(binding.Path)) is { } abiError)
        {
            // Only the constant-returning version export ran, so unmapping is safe.
            binding.FreeUnused();
            TandemLog.NativeLibraryRefused(logger, abiError.Message);
            return new NativeRuntime(null, abiError);
        }

        if (binding.tandem_library_status != null && binding.tandem_library_status() is var status && status != 0)
        {
            // The library's registration failed (a panic, or a descriptor the
            // SDK refuses); every other export would return the same error.
            var reason = NativeErrors.Take(binding, status, null)!.Message;
            var refused = new TandemException(TandemStatusCode.FailedPrecondition, $"the native library refused to load: {reason}", backend: BackendKind.Native);
            TandemLog.NativeLibraryRefused(logger, refused.Message);
            return new NativeRuntime(null, refused);
        }

        var runtime = new NativeRuntime(binding, null);
        NativeRuntimeInfo info;
        NativeErrors.ThrowIfError(binding, binding.tandem_runtime_info(&info), null);
        runtime.Info = info;
        runtime.KernelSet = runtime.Describe();
        runtime.Bind(expected, logger);
        TandemLog.NativeLibraryLoaded(logger, version >> 16, version & 0xFFFF, info.ComputeThreads, IsaName(info.Isa));
        return runtime;
    }

    /// <summary>Refuses a library whose ABI major differs from <paramref name="abiMajor"/>.</summary>
    public static TandemException? CheckAbi(uint version, uint abiMajor = KernelContracts.AbiMajor, string library = LibraryFileName)
    {
        var (major, minor) = (version >> 16, version & 0xFFFF);
        return major == abiMajor
            ? null
            : new TandemException(TandemStatusCode.FailedPrecondition, $"{library} speaks ABI {major}.{minor} but this build of Tandem needs ABI {abiMajor}.x; rebuild the native library against a matching tandem-sdk ('make build') or use a matching release", backend: BackendKind.Native);
    }

    public static string IsaName(uint isa) => isa switch
    {
        1 => "AVX-512",
        2 => "AVX2+FMA",
        _ => "portable",
    };

    /// <summary>The file a null or configured path resolves to, or null when only the loader's search path is left.</summary>
    public static string? ResolvePath(string? libraryPath)
    {
        if ((libraryPath ?? Environment.GetEnvironmentVariable(LibraryPathVariable)) is { Length: > 0 } explicitPath)
        {
            return explicitPath;
        }

        var besideAssembly = Path.Combine(AppContext.BaseDirectory, LibraryFileName);
        return File.Exists(besideAssembly) ? besideAssembly : null;
    }

    /// <summary>The kernel, or null with the reason it is refused.</summary>
    public NativeKernel? Kernel(string name, out TandemException? refusal)
    {
        if (LoadError is not null)
        {
            refusal = LoadError;
            return null;
        }

        if (_kernels.TryGetValue(name, out var kernel))
        {
            refusal = null;
            return kernel;
        }

        refusal = _refusals.TryGetValue(name, out var known)
            ? known
            : new TandemException(TandemStatusCode.Unimplemented, $"this build declares no contract for kernel '{name}'", name, BackendKind.Native);
        return null;
    }

    /// <summary>The kernels this library serves (its descriptor matched).</summary>
    public IEnumerable<string> Served => _kernels.Keys;

    /// <summary>Finds each expected kernel and refuses those whose descriptor differs.</summary>
    internal void Bind(IReadOnlyList<KernelDescriptor> expected, ILogger logger)
    {
        _kernels.Clear();
        _refusals.Clear();
        foreach (var contract in expected)
        {
            KernelDescriptor? actual = null;
            foreach (var candidate in KernelSet!.Kernels)
            {
                if (candidate.Name == contract.Name)
                {
                    actual = candidate;
                }
            }

            if (KernelContracts.Difference(contract, actual) is { } difference)
            {
                var refusal = new TandemException(TandemStatusCode.FailedPrecondition, $"the native backend is refused for this kernel: {difference}", contract.Name, BackendKind.Native);
                _refusals[contract.Name] = refusal;
                if (actual is not null)
                {
                    // A kernel the library lacks may come from another library: the set decides and tells.
                    TandemLog.KernelContractMismatch(logger, contract.Name, $"{difference} (library '{Name}')");
                }

                continue;
            }

            _kernels[contract.Name] = new NativeKernel(Binding, contract.Name, Find(contract.Name));
        }
    }

    /// <summary>The library's tandem_kernel_t* for <paramref name="name"/> (NOT_FOUND when it has none).</summary>
    internal nint Find(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        nint handle;
        fixed (byte* p = bytes)
        {
            NativeErrors.ThrowIfError(Binding, Binding.tandem_kernel_find(p, (nuint)bytes.Length, &handle), name);
        }

        return handle;
    }

    private KernelSet Describe()
    {
        NativeBuffer buffer;
        NativeErrors.ThrowIfError(Binding, Binding.tandem_kernels_describe(&buffer), null);
        try
        {
            return KernelSet.Parser.ParseFrom(new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)));
        }
        finally
        {
            Binding.tandem_buffer_free(&buffer);
        }
    }

    private static NativeLibraryBinding Open(string? configuredPath)
    {
        if (ResolvePath(configuredPath) is { } path)
        {
            return NativeLibraryBinding.Load(path);
        }

        // Nothing configured or next to the app: the loader's search path (LD_LIBRARY_PATH, ...).
        return NativeLibraryBinding.Load(LibraryFileName);
    }
}
