using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tandem.Internal.Contracts;
using Tandem.Internal.Hashing;
using Tandem.Internal.Managed;
using Tandem.Internal.Native;
using Tandem.Internal.Pricing;
using Tandem.Internal.Similarity;

namespace Tandem.Internal;

/// <summary>
/// Chooses the backend for each kernel from the current options: the native
/// library when it is loaded and its descriptor matches, otherwise managed
/// (when fallback is allowed) with the reason logged once.
/// </summary>
internal sealed class BackendResolver
{
    private readonly IOptionsMonitor<TandemOptions> _options;
    private readonly ILogger _logger;
    private readonly Lazy<NativeRuntime> _native;
    private readonly ManagedSimilarityBackend _managedSimilarity = new();
    private readonly ManagedMonteCarlo _managedPricing = new();
    private readonly ManagedHashingBackend _managedHashing = new();
    private NativeHashingBackend? _nativeHashing;
    private readonly HashSet<string> _loggedFallbacks = new(StringComparer.Ordinal);
    private (TandemOptions Options, NativeSimilarityBackend Backend)? _nativeSimilarity;
    private (TandemOptions Options, NativePricingBackend Backend)? _nativePricing;

    public BackendResolver(IOptionsMonitor<TandemOptions> options, ILoggerFactory loggerFactory, NativeRuntime? native = null)
    {
        _options = options;
        _logger = loggerFactory.CreateLogger("Tandem");
        _native = native is null
            ? new Lazy<NativeRuntime>(() => NativeRuntime.Load(_options.CurrentValue.NativeLibraryPath, KernelContracts.All, _logger))
            : new Lazy<NativeRuntime>(native);
    }

    public NativeRuntime Native => _native.Value;

    public ISimilarityBackend Similarity()
    {
        var options = _options.CurrentValue;
        if (options.Backend == BackendKind.Managed)
        {
            return _managedSimilarity;
        }

        if (NativeOrFallback(KernelContracts.SimilarityTopK, options) is not { } kernel)
        {
            return _managedSimilarity;
        }

        var cached = _nativeSimilarity;
        if (cached is { } c && ReferenceEquals(c.Options, options))
        {
            return c.Backend;
        }

        var backend = new NativeSimilarityBackend(kernel, options);
        _nativeSimilarity = (options, backend);
        return backend;
    }

    public IPricingBackend Pricing()
    {
        var options = _options.CurrentValue;
        if (options.Backend == BackendKind.Managed)
        {
            return _managedPricing;
        }

        if (NativeOrFallback(KernelContracts.MonteCarloEuropean, options) is not { } kernel)
        {
            return _managedPricing;
        }

        if (_nativePricing is { } cached && ReferenceEquals(cached.Options, options))
        {
            return cached.Backend;
        }

        var backend = new NativePricingBackend(kernel, options);
        _nativePricing = (options, backend);
        return backend;
    }

    /// <summary>The hashing backend for an input of <paramref name="length"/> bytes.</summary>
    public IHashingBackend Hashing(int length)
    {
        var options = _options.CurrentValue;
        if (options.Backend == BackendKind.Managed || length < options.HashManagedBelowBytes)
        {
            return _managedHashing;
        }

        if (NativeOrFallback(KernelContracts.HashBlake3, options) is not { } kernel)
        {
            return _managedHashing;
        }

        return _nativeHashing ??= new NativeHashingBackend(kernel, kernel.Handle);
    }

    /// <summary>
    /// The native kernel, or null when the managed backend must serve it
    /// (reason logged once); throws the refusal when fallback is off.
    /// </summary>
    private NativeKernel? NativeOrFallback(string name, TandemOptions options)
    {
        if (Native.Kernel(name, out var refusal) is { } kernel)
        {
            return kernel;
        }

        if (!options.FallbackToManaged)
        {
            throw refusal!;
        }

        LogFallbackOnce(name, refusal!.Message);
        return null;
    }

    private void LogFallbackOnce(string kernel, string reason)
    {
        lock (_loggedFallbacks)
        {
            if (_loggedFallbacks.Add(kernel + "\n" + reason))
            {
                TandemLog.FallingBack(_logger, kernel, BackendKind.Native, BackendKind.Managed, reason);
            }
        }
    }
}
