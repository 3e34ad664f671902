using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;

namespace Tandem.Internal.Native;

/// <summary>
/// The loaded libtandem.so: its ABI version checked, its kernel set read and
/// compared with the descriptors this build expects. A kernel whose
/// descriptor differs is refused (FAILED_PRECONDITION) and never called.
/// </summary>
internal sealed unsafe class NativeRuntime
{
    /// <summary>Environment variable naming libtandem.so explicitly.</summary>
    public const string LibraryPathVariable = "TANDEM_NATIVE_LIBRARY";

    private static readonly Lock ResolverLock = new();
    private static string? _resolverPath;
    private static bool _resolverSet;

    private readonly Dictionary<string, NativeKernel> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TandemException> _refusals = new(StringComparer.Ordinal);

    private NativeRuntime(TandemException? loadError) => LoadError = loadError;

    /// <summary>Why the whole library is unusable (missing, wrong ABI), or null.</summary>
    public TandemException? LoadError { get; }

    public NativeRuntimeInfo Info { get; private set; }

    public KernelSet? KernelSet { get; private set; }

    /// <summary>Loads the library and checks it against <paramref name="expected"/>.</summary>
    public static NativeRuntime Load(string? libraryPath, IReadOnlyList<KernelDescriptor> expected, ILogger logger)
    {
        SetResolver(libraryPath ?? Environment.GetEnvironmentVariable(LibraryPathVariable));
        uint version;
        try
        {
            version = NativeMethods.tandem_abi_version();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            var error = new TandemException(TandemStatusCode.FailedPrecondition, $"the native library libtandem.so could not be loaded ({e.GetType().Name}); build it with 'make build' or set {LibraryPathVariable}", backend: BackendKind.Native, innerException: e);
            TandemLog.NativeLibraryRefused(logger, error.Message);
            return new NativeRuntime(error);
        }

        if (CheckAbi(version) is { } abiError)
        {
            TandemLog.NativeLibraryRefused(logger, abiError.Message);
            return new NativeRuntime(abiError);
        }

        var runtime = new NativeRuntime(null);
        NativeRuntimeInfo info;
        NativeErrors.ThrowIfError(NativeMethods.tandem_runtime_info(&info), null);
        runtime.Info = info;
        runtime.KernelSet = Describe();
        runtime.Bind(expected, logger);
        TandemLog.NativeLibraryLoaded(logger, version >> 16, version & 0xFFFF, info.ComputeThreads, IsaName(info.Isa));
        return runtime;
    }

    /// <summary>Refuses a library whose ABI major differs from <see cref="KernelContracts.AbiMajor"/>.</summary>
    public static TandemException? CheckAbi(uint version)
    {
        var (major, minor) = (version >> 16, version & 0xFFFF);
        return major == KernelContracts.AbiMajor
            ? null
            : new TandemException(TandemStatusCode.FailedPrecondition, $"libtandem.so speaks ABI {major}.{minor} but this build of Tandem needs ABI {KernelContracts.AbiMajor}.x; rebuild the native library ('make build') or use a matching release", backend: BackendKind.Native);
    }

    public static string IsaName(uint isa) => isa switch
    {
        1 => "AVX-512",
        2 => "AVX2+FMA",
        _ => "portable",
    };

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
                TandemLog.KernelContractMismatch(logger, contract.Name, difference);
                continue;
            }

            _kernels[contract.Name] = new NativeKernel(contract.Name, Find(contract.Name));
        }
    }

    internal static nint Find(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        nint handle;
        fixed (byte* p = bytes)
        {
            NativeErrors.ThrowIfError(NativeMethods.tandem_kernel_find(p, (nuint)bytes.Length, &handle), name);
        }

        return handle;
    }

    private static KernelSet Describe()
    {
        NativeBuffer buffer;
        NativeErrors.ThrowIfError(NativeMethods.tandem_kernels_describe(&buffer), null);
        try
        {
            return KernelSet.Parser.ParseFrom(new ReadOnlySpan<byte>(buffer.Data, checked((int)buffer.Length)));
        }
        finally
        {
            NativeMethods.tandem_buffer_free(&buffer);
        }
    }

    private static void SetResolver(string? path)
    {
        lock (ResolverLock)
        {
            if (_resolverSet)
            {
                return;
            }

            _resolverPath = path;
            NativeLibrary.SetDllImportResolver(typeof(NativeRuntime).Assembly, Resolve);
            _resolverSet = true;
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != NativeMethods.Library)
        {
            return 0;
        }

        if (_resolverPath is { Length: > 0 } explicitPath)
        {
            return NativeLibrary.Load(explicitPath);
        }

        var besideAssembly = Path.Combine(AppContext.BaseDirectory, "libtandem.so");
        return File.Exists(besideAssembly) ? NativeLibrary.Load(besideAssembly) : 0;
    }
}
