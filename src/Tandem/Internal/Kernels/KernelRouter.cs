using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tandem.Internal.Managed;
using Tandem.Internal.Native;

namespace Tandem.Internal.Kernels;

/// <summary>
/// Chooses the backend of each call from the current options: the remote
/// workers when configured and registered, the native library that
/// publishes the kernel when its descriptor matches, otherwise Managed (when
/// fallback is allowed, the reason logged once). Synchronous calls run in
/// process only: waiting on a worker would block their thread on I/O. Knows
/// no kernel by name: the routes are the catalog's kernels.
/// </summary>
internal sealed class KernelRouter(Func<TandemOptions> currentOptions, ILogger logger, KernelCatalog catalog, NativeLibrarySet libraries, IInProcessKernelBackend managed, Func<IInProcessKernelBackend> native, IKernelBackend? remote) : IKernelRouting
{
    private readonly HashSet<string> _loggedFallbacks = new(StringComparer.Ordinal);

    public IInProcessKernelBackend Managed => managed;

    /// <summary>The in-process Rust backend (created on first use).</summary>
    public IInProcessKernelBackend Native => native();

    /// <summary>The backend for <paramref name="kernel"/> with an input of <paramref name="inputBytes"/>.</summary>
    public IKernelBackend For(string kernel, long inputBytes = long.MaxValue)
    {
        var options = currentOptions();
        var configured = options.For(kernel)?.Backend ?? options.Backend;
        if (configured == BackendKind.Managed
            || inputBytes < options.ManagedBelowBytes(kernel))
        {
            return Managed;
        }

        if (configured == BackendKind.Remote)
        {
            var remoteRefusal = remote is null
                ? new TandemException(TandemStatusCode.FailedPrecondition, "the Remote backend is configured but not registered; call AddTandemRemote", kernel, BackendKind.Remote)
                : (remote as IKernelRefusals)?.Refusal(kernel);
            if (remoteRefusal is null)
            {
                return remote!;
            }

            if (!options.FallbackToManaged)
            {
                throw remoteRefusal;
            }

            LogFallbackOnce(kernel, BackendKind.Remote, BackendKind.Native, remoteRefusal.Message);
        }

        return InProcess(kernel, options);
    }

    /// <summary>
    /// The backend for a synchronous call of <paramref name="kernel"/>: as
    /// <see cref="For"/>, except that a kernel routed to Remote runs on Native
    /// (or Managed) instead, since waiting for a worker would block the
    /// caller's thread on I/O.
    /// </summary>
    public IInProcessKernelBackend InProcessFor(string kernel, long inputBytes = long.MaxValue)
    {
        var backend = For(kernel, inputBytes);
        if (backend is IInProcessKernelBackend inProcess)
        {
            return inProcess;
        }

        LogFallbackOnce(kernel, BackendKind.Remote, BackendKind.Native, "a synchronous call runs in process, since waiting for a remote worker would block its thread; use the asynchronous method to run it on the workers");
        return InProcess(kernel, currentOptions());
    }

    /// <summary>Native when the library serves <paramref name="kernel"/>, otherwise Managed when fallback is allowed.</summary>
    public IInProcessKernelBackend InProcess(string kernel, TandemOptions options)
    {
        if (libraries.Kernel(kernel, out var refusal) is not null)
        {
            return native();
        }

        if (!options.FallbackToManaged)
        {
            throw refusal!;
        }

        LogFallbackOnce(kernel, BackendKind.Native, BackendKind.Managed, refusal!.Message);
        return Managed;
    }

    public IReadOnlyList<KernelRoute> Routes
    {
        get
        {
            var options = currentOptions();
            var routes = new List<KernelRoute>(catalog.Contracts.Count);
            foreach (var contract in catalog.Contracts)
            {
                var kernel = contract.Name;
                var configured = options.For(kernel)?.Backend ?? options.Backend;
                try
                {
                    var serving = For(kernel).Kind;
                    var reason = serving == configured ? null : RefusalOf(kernel, configured);
                    routes.Add(serving == BackendKind.Managed && catalog.Twin(kernel) is null
                        ? new KernelRoute(kernel, configured, null, (reason is null ? "" : reason + "; ") + "it runs on Managed, and no managed twin is registered for it (AddManagedKernel)")
                        : new KernelRoute(kernel, configured, serving, reason));
                }
                catch (TandemException e)
                {
                    routes.Add(new KernelRoute(kernel, configured, null, e.Message));
                }
            }

            return routes;
        }
    }

    private string? RefusalOf(string kernel, BackendKind configured)
    {
        if (configured == BackendKind.Remote)
        {
            return remote is null
                ? "the Remote backend is configured but not registered; call AddTandemRemote"
                : (remote as IKernelRefusals)?.Refusal(kernel)?.Message ?? RefusalOf(kernel, BackendKind.Native);
        }

        return libraries.Kernel(kernel, out var refusal) is null ? refusal?.Message : null;
    }

    public void LogFallbackOnce(string kernel, BackendKind from, BackendKind to, string reason)
    {
        lock (_loggedFallbacks)
        {
            if (_loggedFallbacks.Add(kernel + "\n" + reason))
            {
                TandemLog.FallingBack(logger, kernel, from, to, reason);
            }
        }
    }
}
