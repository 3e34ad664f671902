using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tandem.Internal.Contracts;
using System.Diagnostics.Metrics;
using Tandem.Internal.Caching;
using Tandem.Internal.Dispatch;
using Tandem.Internal.Resilience;
using Tandem.Internal.Telemetry;
using Tandem.Internal.Managed;
using Tandem.Internal.Native;

namespace Tandem.Internal.Kernels;

/// <summary>
/// Runs calls: validates each against its contract, admits, batches and
/// caches it, runs it on the backend <see cref="KernelRouter"/> chose with
/// that backend's resilience, falls back along Remote → Native → Managed when
/// it fails, and counts it. Owns the native libraries, the dispatcher and the
/// telemetry of one host.
/// </summary>
internal sealed class KernelBackends : IKernelRouting, IDisposable
{
    private volatile bool _disposed;
    private readonly IOptionsMonitor<TandemOptions> _options;
    private readonly ILogger _logger;
    private readonly NativeLibrarySet _libraries;
    private readonly Lazy<NativeKernelBackend> _native;

    private readonly KernelDispatcher _dispatcher;
    private readonly BackendResilience _resilience;
    private readonly TandemTelemetry _telemetry;
    private readonly TimeProvider _time;
    private readonly KernelDispatcher.SyncExecutor _execute;
    private readonly IDisposable? _optionsChanges;

    // The options every call reads: IOptionsMonitor.CurrentValue looks its
    // value up by name in a dictionary on every read, which a 100 ns call
    // cannot afford; this is replaced when the monitor reports a change.
    private volatile TandemOptions _current;

    public KernelBackends(IOptionsMonitor<TandemOptions> options, ILoggerFactory loggerFactory, NativeRuntime? native = null, TimeProvider? time = null, IMeterFactory? meterFactory = null, IKernelBackend? remote = null, KernelCatalog? catalog = null)
    {
        Catalog = catalog ?? KernelCatalog.Reference;
        Catalog.ThrowIfRefused();
        _options = options;
        _current = options.CurrentValue;
        _optionsChanges = options.OnChange((value, name) =>
        {
            if (name is null || name == Options.DefaultName)
            {
                _current = value;
            }
        });
        _execute = Execute;
        time ??= TimeProvider.System;
        _time = time;
        _telemetry = new TandemTelemetry(meterFactory);
        Cache = new ResultCache(() => _current.Cache);
        _resilience = new BackendResilience(time, () => _current);
        _dispatcher = new KernelDispatcher(time, () => _current, _telemetry, ExecuteAsync);
        _logger = loggerFactory.CreateLogger("Tandem");
        _libraries = new NativeLibrarySet(() => native ?? NativeRuntime.Load(_options.CurrentValue.NativeLibraryPath, Catalog.Descriptors, _logger), options, _logger, time, Catalog.Descriptors);
        Managed = new ManagedKernelBackend(() => _current, Catalog);
        _native = new Lazy<NativeKernelBackend>(() => new NativeKernelBackend(_libraries, () => _current));
        Router = new KernelRouter(() => _current, _logger, Catalog, _libraries, Managed, () => _native.Value, remote);
    }

    /// <summary>The in-process Rust backend (built on first use).</summary>
    public NativeKernelBackend NativeBackend => _native.Value;

    /// <summary>The options now in force.</summary>
    public TandemOptions CurrentOptions => _current;

    /// <summary>The kernels, state kinds and managed twins this host knows.</summary>
    public KernelCatalog Catalog { get; }

    /// <summary>The build of libtandem.so new calls run on (it changes with a hot swap).</summary>
    public NativeRuntime Native => _libraries.Primary.Generation.Runtime;

    /// <summary>Loads, checks and hot-swaps libtandem.so.</summary>
    public NativeLibraryHost NativeHost => _libraries.Primary;

    /// <summary>Every native kernel library in process, each hot-swapped on its own.</summary>
    public NativeLibrarySet NativeLibraries => _libraries;

    public IInProcessKernelBackend Managed { get; }

    /// <summary>The backend for <paramref name="kernel"/> with an input of <paramref name="inputBytes"/>.</summary>
    public IKernelBackend For(string kernel, long inputBytes = long.MaxValue) => Router.For(kernel, inputBytes);

    /// <summary>The backend for a synchronous call of <paramref name="kernel"/> (see <see cref="KernelRouter.InProcessFor"/>).</summary>
    public IInProcessKernelBackend InProcessFor(string kernel, long inputBytes = long.MaxValue) => Router.InProcessFor(kernel, inputBytes);

    public IReadOnlyList<KernelRoute> Routes => Router.Routes;

    /// <summary>Chooses the backend of each call.</summary>
    public KernelRouter Router { get; }

    /// <summary>
    /// Counts a streamed call, which bypasses the dispatcher, in
    /// <c>tandem.calls</c> and <c>tandem.call.duration</c> like any other.
    /// </summary>
    public void RecordStream(string kernel, BackendKind backend, long startedTimestamp, TandemStatusCode code)
    {
        var tags = new System.Diagnostics.TagList { { "kernel", kernel }, { "backend", TandemTelemetry.BackendName(backend) }, { "code", TandemTelemetry.CodeName(code) } };
        _telemetry.Calls.Add(1, tags);
        _telemetry.CallDuration.Record(_time.GetElapsedTime(startedTimestamp).TotalSeconds, tags);
    }

    /// <summary>The timestamp <see cref="RecordStream"/> measures from.</summary>
    public long Timestamp() => _time.GetTimestamp();

    /// <summary>
    /// Validates and runs a short call on this thread, with admission,
    /// resilience, fallback and telemetry. Only in-process backends take
    /// synchronous calls (<see cref="InProcessFor"/>).
    /// </summary>
    public void Invoke(IInProcessKernelBackend backend, KernelCall call)
    {
        ThrowIfDisposed(call);
        Validate(call);
        _dispatcher.Dispatch(backend, call, _execute);
    }

    /// <summary>The contract, then the work bound: a call over it is counted in <c>tandem.rejections</c> and refused before it is cached, queued or batched.</summary>
    private void Validate(KernelCall call)
    {
        ContractValidator.Validate(call);
        try
        {
            call.WorkUnits = CallWork.Check(call);
        }
        catch (TandemException)
        {
            _telemetry.Rejections.Add(1, new KeyValuePair<string, object?>("kernel", call.Kernel), new KeyValuePair<string, object?>("reason", CallWork.Limit));
            throw;
        }
    }

    private void Execute(IInProcessKernelBackend backend, KernelCall call, long started)
    {
        IInProcessKernelBackend target;
        try
        {
            _resilience.Execute(backend, call, started);
            return;
        }
        catch (TandemException e) when (CanFallBack(backend, call, e, CancellationToken.None))
        {
            // Native falls back to Managed, which has nowhere further to go.
            target = Managed;
            CountFallback(backend, target, call, e);
        }

        target.Invoke(call);
    }

    /// <summary>Native when the remote call fails and the library serves the kernel, otherwise Managed.</summary>
    private IInProcessKernelBackend FallbackFor(IKernelBackend backend, KernelCall call) =>
        backend.Kind == BackendKind.Remote && _libraries.Kernel(call.Kernel, out _) is not null ? _native.Value : Managed;

    private static IKernelState? FallbackState(IKernelState? state, IInProcessKernelBackend target) =>
        state is IFallbackState rebuildable ? rebuildable.StateFor(target) : state;

    private void CountFallback(IKernelBackend backend, IKernelBackend target, KernelCall call, TandemException e)
    {
        _telemetry.Fallbacks.Add(
            1,
            new KeyValuePair<string, object?>("kernel", call.Kernel),
            new KeyValuePair<string, object?>("from", TandemTelemetry.BackendName(backend.Kind)),
            new KeyValuePair<string, object?>("to", TandemTelemetry.BackendName(target.Kind)),
            new KeyValuePair<string, object?>("reason", TandemTelemetry.CodeName(e.Code)));
        TandemLog.FellBack(_logger, call.Kernel, backend.Kind, target.Kind, e.Code, e.CorrelationId);
    }

    /// <summary>
    /// Validates a call and dispatches it: admission, batching, bounded
    /// in-flight work; long work never blocks the caller's thread.
    /// </summary>
    public async ValueTask InvokeAsync(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken)
    {
        ThrowIfDisposed(call);
        Validate(call);
        var flags = call.Descriptor.Flags;
        if (!(_current.For(call.Kernel)?.Cache ?? false) || !flags.Idempotent || !flags.Deterministic)
        {
            await _dispatcher.DispatchAsync(backend, call, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (Cache.TryRead(call, out var key))
        {
            return;
        }

        await _dispatcher.DispatchAsync(backend, call, cancellationToken).ConfigureAwait(false);
        Cache.Write(key, call);
    }

    /// <summary>Results of kernels that opted in with <see cref="KernelOptions.Cache"/>.</summary>
    public ResultCache Cache { get; }

    /// <summary>Calls of <paramref name="kernel"/> admitted and not yet completed.</summary>
    public int Pending(string kernel, BackendKind backend) => _dispatcher.Pending(kernel, backend);

    /// <summary>
    /// Runs one call or batch with the backend's resilience pipeline; when it
    /// still fails with a backend failure (or the circuit is open), runs it on
    /// the next backend of Remote → Native → Managed and counts the fallback.
    /// Native falls back for stateless kernels only; a remote state rebuilds
    /// itself on the fallback backend from the tensors it keeps.
    /// </summary>
    internal async ValueTask ExecuteAsync(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken)
    {
        IInProcessKernelBackend target;
        using (var span = TandemTelemetry.Source.StartActivity("tandem.invoke"))
        {
            span?.SetTag("tandem.kernel", call.Kernel);
            span?.SetTag("tandem.backend", TandemTelemetry.BackendName(backend.Kind));
            try
            {
                await _resilience.ExecuteAsync(backend, call, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (TandemException e) when (CanFallBack(backend, call, e, cancellationToken))
            {
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, TandemTelemetry.CodeName(e.Code));
                target = FallbackFor(backend, call);
                CountFallback(backend, target, call, e);
            }
        }

        var state = call.State;
        call.State = FallbackState(state, target);
        try
        {
            if (target.Kind == BackendKind.Managed)
            {
                await target.InvokeAsync(call, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ExecuteAsync(target, call, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            call.State = state;
        }
    }

    private bool CanFallBack(IKernelBackend backend, KernelCall call, TandemException e, CancellationToken cancellationToken) =>
        _current.FallbackToManaged
        && TandemStatusCodes.MayFallBack(e)
        && backend.Kind switch
        {
            // A native deadline is the call's own (CallTimeout, Resilience:Timeout): no budget is left for Managed.
            BackendKind.Native => call.State is null && e.Code != TandemStatusCode.DeadlineExceeded,
            // A remote deadline is one worker attempt's: budget is left while the caller has not given up.
            BackendKind.Remote => (call.State is null or IFallbackState)
                && (e.Code != TandemStatusCode.DeadlineExceeded || !cancellationToken.IsCancellationRequested),
            _ => false,
        };

    /// <summary>Refuses further calls (they fail at once, never hang) and releases the meter.</summary>
    public void Dispose()
    {
        _disposed = true;
        _optionsChanges?.Dispose();
        _telemetry.Dispose();
        _libraries.Dispose();
    }

    private void ThrowIfDisposed(KernelCall call)
    {
        if (_disposed)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, "the Tandem services were disposed; resolve them from a live service provider", call.Kernel);
        }
    }
}
