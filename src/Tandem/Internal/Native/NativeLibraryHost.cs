using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Native;

namespace Tandem.Internal.Native;

/// <summary>
/// Holds the native library generation new calls run on and replaces it
/// while the application runs (hot swap): the new build is loaded beside the
/// old one from a versioned copy, checked (ABI, descriptors), every live
/// native state is rebuilt in it, then one atomic write switches new calls
/// to it. Calls and streams that started on the old generation finish there;
/// its states are freed when the last call using them returns.
/// </summary>
/// <remarks>
/// The old library is never unmapped: its Rust compute threads stay parked
/// in its code and Rust registers thread-local destructors, so dlclose is
/// either deferred by glibc or unsafe. Each swap therefore keeps the old
/// code and its idle compute pool (threads, no work) for the life of the process.
/// </remarks>
internal sealed class NativeLibraryHost : IDisposable
{
    private readonly Func<NativeRuntime> _initial;
    private readonly Func<TandemOptions, string?>? _configuredPathOf;
    private readonly IOptionsMonitor<TandemOptions> _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IReadOnlyList<KernelDescriptor> _contracts;
    private readonly uint _abiMajor;
    private readonly Lock _initializing = new();
    private readonly SemaphoreSlim _swapping = new(1, 1);
    // Readers: state creations (concurrent). Writer: a swap rebuilding states and switching.
    private readonly ReaderWriterLockSlim _states = new(LockRecursionPolicy.NoRecursion);
    private readonly ConcurrentDictionary<NativeState, byte> _live = new();
    private readonly IDisposable? _subscription;
    private NativeGeneration? _current;
    private string? _configuredPath;
    private DirectoryInfo? _copies;
    private int _draining;

    /// <param name="initial">Loads the library of generation 1 (on first use).</param>
    /// <param name="contracts">Descriptors every new library is checked against.</param>
    /// <param name="abiMajor">ABI major every new library must speak (a test seam).</param>
    /// <param name="configuredPath">
    /// The option whose change hot-swaps this library (<see cref="TandemOptions.NativeLibraryPath"/>
    /// for libtandem.so), or null when only <see cref="HotSwapAsync"/> does.
    /// </param>
    public NativeLibraryHost(Func<NativeRuntime> initial, IOptionsMonitor<TandemOptions> options, ILogger logger, TimeProvider time, IReadOnlyList<KernelDescriptor>? contracts = null, uint abiMajor = KernelContracts.AbiMajor, Func<TandemOptions, string?>? configuredPath = null)
    {
        _initial = initial;
        _configuredPathOf = configuredPath;
        _options = options;
        _logger = logger;
        _time = time;
        _contracts = contracts ?? KernelContracts.All;
        _abiMajor = abiMajor;
        _subscription = options.OnChange(OnOptionsChanged);
    }

    /// <summary>The generation new calls run on (loads generation 1 on first use).</summary>
    public NativeGeneration Generation => Volatile.Read(ref _current) ?? Initialize();

    public NativeLibraryInfo Current => Describe(Generation);

    /// <summary>Generations switched away from whose state handles or streams are still in use.</summary>
    public int Draining => Volatile.Read(ref _draining);

    /// <summary>
    /// Says why a new build may not serve beside the other libraries (it
    /// exports a name another library owns), or null; set by the library set.
    /// </summary>
    internal Func<NativeLibraryHost, KernelSet, string?>? Conflicts { get; set; }

    /// <summary>Called after a swap switched new calls to a new build; set by the library set.</summary>
    internal Action? Swapped { get; set; }

    /// <summary>The last swap started by a change of <see cref="TandemOptions.NativeLibraryPath"/>, or null.</summary>
    internal Task? ConfigurationSwap { get; private set; }

    /// <summary>The private directory versioned copies are written to (each is deleted once loaded), or null before the first swap.</summary>
    internal string? CopyDirectory => _copies?.FullName;

    /// <summary>Takes a hold on the current generation for something that outlives a call (a stream).</summary>
    public NativeGeneration Hold()
    {
        while (true)
        {
            var generation = Generation;
            // Fails only when a swap replaced the generation and it drained meanwhile: read the new one.
            if (generation.TryHold())
            {
                return generation;
            }
        }
    }

    /// <summary>Held while a state is created, so a swap cannot miss it.</summary>
    public StateCreation EnterStateCreation()
    {
        _states.EnterReadLock();
        return new StateCreation(_states);
    }

    /// <summary>Registers a live state, to be rebuilt by later swaps.</summary>
    public void Track(NativeState state) => _live.TryAdd(state, 0);

    /// <summary>Forgets a dropped state.</summary>
    public void Forget(NativeState state) => _live.TryRemove(state, out _);

    public async ValueTask<NativeLibraryInfo> HotSwapAsync(string libraryPath, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(libraryPath))
        {
            throw new TandemException(TandemStatusCode.InvalidArgument, "give the path of the new build of libtandem.so to swap to", backend: BackendKind.Native);
        }

        if (!_options.CurrentValue.NativeHotSwap)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, "hot swap of the native library is disabled; set Tandem:NativeHotSwap to true (native states then keep a managed copy of their data)", backend: BackendKind.Native);
        }

        try
        {
            await _swapping.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await Task.Run(() => Swap(libraryPath, cancellationToken), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _swapping.Release();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the hot swap was cancelled before the switch; the current library keeps serving", backend: BackendKind.Native);
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.FailedPrecondition)
        {
            TandemLog.NativeLibrarySwapRefused(_logger, libraryPath, e.Message);
            throw;
        }
    }

    public void Dispose()
    {
        _subscription?.Dispose();
        lock (_initializing)
        {
            try
            {
                _copies?.Delete(recursive: true);
            }
            catch (IOException)
            {
                // Best effort: copies are unlinked right after loading anyway.
            }
        }
    }

    private NativeLibraryInfo Swap(string libraryPath, CancellationToken cancellationToken)
    {
        var current = Generation;
        var source = Path.GetFullPath(libraryPath);
        if (!File.Exists(source))
        {
            throw Refused("there is no file at the path given");
        }

        var (copy, sha256) = VersionedCopy(source, current.Number + 1);
        NativeRuntime runtime;
        try
        {
            runtime = NativeRuntime.Load(copy, _contracts, _logger, _abiMajor);
        }
        catch (Exception e) when (e is TandemException or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw Refused($"it could not report its runtime or kernels: {e.Message}", e);
        }
        finally
        {
            // Once mapped, the copy is no longer needed on disk.
            File.Delete(copy);
        }

        if (runtime.LoadError is { } loadError)
        {
            throw Refused(loadError.Message, loadError);
        }

        if (current.Runtime.KernelSet is { LibraryName: { Length: > 0 } name } && runtime.KernelSet!.LibraryName != name)
        {
            throw Refused($"it is library '{runtime.KernelSet.LibraryName}', not '{name}'; swap each library for a new build of itself");
        }

        if (Conflicts?.Invoke(this, runtime.KernelSet!) is { } conflict)
        {
            throw Refused(conflict);
        }

        foreach (var kernel in current.Runtime.Served)
        {
            if (runtime.Kernel(kernel, out var refusal) is null)
            {
                throw Refused($"kernel '{kernel}' would be refused: {refusal!.Message}", refusal);
            }
        }

        cancellationToken.ThrowIfCancellationRequested();
        runtime.Binding.SetCallLog(_options.CurrentValue.NativeCallLog);
        var next = new NativeGeneration(runtime, source, current.Number + 1, _time.GetUtcNow(), Drained);
        int rebuilt;
        _states.EnterWriteLock();
        try
        {
            rebuilt = RebuildStates(next);
            Interlocked.Increment(ref _draining);
            Volatile.Write(ref _current, next);
        }
        finally
        {
            _states.ExitWriteLock();
        }

        // Calls that read the old generation and have not taken its state handles yet move to the new one.
        foreach (var state in _live.Keys)
        {
            state.Detach(current);
        }

        Swapped?.Invoke();
        TandemLog.NativeLibrarySwapped(_logger, next.Number, source, sha256, rebuilt, current.Number);
        // The hold of being current: the old generation drains once its state handles and streams are released.
        current.Release();
        return Describe(next);
    }

    /// <summary>Builds every live state in <paramref name="next"/>; on any failure frees what was built and throws.</summary>
    private int RebuildStates(NativeGeneration next)
    {
        var states = _live.Keys.ToArray();
        var unrecoverable = 0;
        foreach (var state in states)
        {
            unrecoverable += state.Recipe is null ? 1 : 0;
        }

        if (unrecoverable > 0)
        {
            throw Refused($"{unrecoverable} native state(s) were created while NativeHotSwap was off and cannot be rebuilt; drop and recreate them");
        }

        var built = new List<(NativeState State, NativeStateHandle Handle)>(states.Length);
        try
        {
            foreach (var state in states)
            {
                built.Add((state, state.Recipe!.Create(next)));
            }
        }
        catch (TandemException e)
        {
            foreach (var (_, handle) in built)
            {
                handle.Dispose();
            }

            throw Refused($"a state could not be rebuilt in the new library: {e.Message}", e);
        }

        foreach (var (state, handle) in built)
        {
            state.Attach(next, handle);
        }

        return built.Count;
    }

    private void Drained(NativeGeneration generation)
    {
        Interlocked.Decrement(ref _draining);
        TandemLog.NativeGenerationDrained(_logger, generation.Number);
    }

    /// <summary>
    /// Copies the library to a name of its own (content hash and generation),
    /// so the dynamic loader maps it as a new object with its own globals even
    /// when the source path is the one already loaded. The directory is
    /// private to this process (0700).
    /// </summary>
    private (string Path, string Sha256) VersionedCopy(string source, long generation)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(source);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Refused($"the file could not be read ({e.GetType().Name})", e);
        }

        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        lock (_initializing)
        {
            _copies ??= Directory.CreateTempSubdirectory("tandem-native-");
        }

        var copy = Path.Combine(_copies.FullName, $"{Path.GetFileNameWithoutExtension(source)}.{sha256[..12]}.g{generation}.so");
        try
        {
            File.WriteAllBytes(copy, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Refused($"the versioned copy could not be written ({e.GetType().Name})", e);
        }

        return (copy, sha256);
    }

    private NativeGeneration Initialize()
    {
        lock (_initializing)
        {
            if (_current is { } loaded)
            {
                return loaded;
            }

            _configuredPath = _configuredPathOf?.Invoke(_options.CurrentValue);
            var runtime = _initial();
            if (runtime.LoadError is null)
            {
                runtime.Binding.SetCallLog(_options.CurrentValue.NativeCallLog);
            }

            var generation = new NativeGeneration(runtime, runtime.LibraryPath, 1, _time.GetUtcNow(), Drained);
            Volatile.Write(ref _current, generation);
            return generation;
        }
    }

    private void OnOptionsChanged(TandemOptions options, string? name)
    {
        if (Volatile.Read(ref _current) is not { } current)
        {
            // Not loaded yet: the first use reads the new options.
            return;
        }

        if (current.Runtime.LoadError is null)
        {
            current.Runtime.Binding.SetCallLog(options.NativeCallLog);
        }

        if (_configuredPathOf is null)
        {
            return;
        }

        var configured = _configuredPathOf(options);
        if (string.Equals(configured, Interlocked.Exchange(ref _configuredPath, configured), StringComparison.Ordinal) || !options.NativeHotSwap)
        {
            return;
        }

        if (NativeRuntime.ResolvePath(configured) is { } path)
        {
            ConfigurationSwap = SwapForConfigurationAsync(path);
        }
    }

    private async Task SwapForConfigurationAsync(string path)
    {
        try
        {
            await HotSwapAsync(path).ConfigureAwait(false);
        }
        catch (TandemException)
        {
            // Refusals are logged by HotSwapAsync; the current library keeps serving.
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            // Nobody awaits a swap started by configuration: log rather than leave it unobserved.
            TandemLog.NativeLibrarySwapRefused(_logger, path, e.GetType().Name);
        }
    }

    private NativeLibraryInfo Describe(NativeGeneration generation)
    {
        var runtime = generation.Runtime;
        var version = runtime.LoadError is null ? runtime.Info.AbiVersion : 0;
        return new NativeLibraryInfo(generation.SourcePath, (int)(version >> 16), (int)(version & 0xFFFF), generation.Number, generation.LoadedAt, runtime.LoadError?.Message)
        {
            Name = runtime.KernelSet?.LibraryName is { Length: > 0 } name ? name : null,
            Version = runtime.KernelSet?.LibraryVersion is { Length: > 0 } v ? v : null,
            Kernels = [.. runtime.Served.Order(StringComparer.Ordinal)],
        };
    }

    private static TandemException Refused(string reason, Exception? inner = null) =>
        new(TandemStatusCode.FailedPrecondition, $"the new native library is refused and the current one keeps serving: {reason}", backend: BackendKind.Native, innerException: inner);

    /// <summary>Releases the state-creation read lock.</summary>
    internal readonly struct StateCreation(ReaderWriterLockSlim gate) : IDisposable
    {
        public void Dispose() => gate.ExitReadLock();
    }
}
