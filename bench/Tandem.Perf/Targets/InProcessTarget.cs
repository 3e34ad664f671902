using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Kernels;
using Tandem.Perf.Cli;
using Tandem.Perf.Telemetry;
using Tandem.Remote;
using Tandem.Testing;

namespace Tandem.Perf.Targets;

/// <summary>
/// A kernel through the real Tandem pipeline in this process
/// (<c>AddTandem</c>, <c>IKernelInvoker</c>): on Managed, on Native, or on
/// Remote with supervised tandem-worker processes (<c>AddTandemRemote</c>).
/// Fallback is off, so a backend that cannot serve the kernel shows as
/// errors instead of being measured on another one. The state a kernel
/// reads is built once; requests rotate over a pool of drawn inputs.
/// </summary>
internal sealed class InProcessTarget : IPerfTarget
{
    private readonly ServiceProvider _services;
    private readonly IKernelInvoker _invoker;
    private readonly KernelState? _state;
    private readonly KernelCase[] _cases;
    private readonly MeterCapture _meter;

    private InProcessTarget(string backend, string description, ServiceProvider services, IKernelInvoker invoker, KernelState? state, KernelCase[] cases, MeterCapture meter)
    {
        Backend = backend;
        Description = description;
        _services = services;
        _invoker = invoker;
        _state = state;
        _cases = cases;
        _meter = meter;
    }

    public string Backend { get; }

    public string Description { get; }

    public IServerTelemetry Telemetry => _meter;

    /// <summary>Builds the host, starts its workers (Remote), builds the state and checks one call succeeds.</summary>
    /// <exception cref="TargetException">The host cannot start or the first call fails (the message says why).</exception>
    public static async Task<InProcessTarget> CreateAsync(RunOptions options, BackendKind backend, KernelInputs inputs, KernelContractSet? library, CancellationToken cancellationToken)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(options.Settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
        var services = new ServiceCollection();
        services.AddTandem(configuration.GetSection(TandemOptions.SectionName));
        services.PostConfigure<TandemOptions>(o =>
        {
            o.Backend = backend;
            o.FallbackToManaged = false;
        });
        if (library is not null)
        {
            services.AddKernelContracts(library).AddKernelLibrary(Path.GetFullPath(options.Library!));
        }

        var description = $"{inputs.KernelContract.Name} in process on {backend}";
        if (backend == BackendKind.Remote)
        {
            services.AddTandemRemote(configuration.GetSection(RemoteOptions.SectionName));
            var workerPath = options.WorkerPath ?? Environment.GetEnvironmentVariable("TANDEM_WORKER_PATH") ?? RepositoryWorker();
            services.PostConfigure<RemoteOptions>(o =>
            {
                o.WorkerPath ??= workerPath;
                o.WorkerCount = options.Workers;
                if (options.Library is { } path && !o.KernelLibraries.Contains(Path.GetFullPath(path)))
                {
                    o.KernelLibraries.Add(Path.GetFullPath(path));
                }
            });
            description = $"{inputs.KernelContract.Name} on {options.Workers} supervised tandem-worker process{(options.Workers == 1 ? "" : "es")}";
        }

        var meter = new MeterCapture(inputs.KernelContract.Name);
        var provider = services.BuildServiceProvider();
        KernelState? state = null;
        try
        {
            try
            {
                // Read the options now, so a bad --set fails here, as bad input, and not on the first call.
                _ = provider.GetRequiredService<IOptions<TandemOptions>>().Value;
                if (backend == BackendKind.Remote)
                {
                    _ = provider.GetRequiredService<IOptions<RemoteOptions>>().Value;
                }
            }
            catch (Exception e) when (e is OptionsValidationException or InvalidOperationException)
            {
                throw new UsageException($"the {backend} host refuses its options (check --set): {e.Message}");
            }

            IKernelInvoker invoker;
            try
            {
                invoker = provider.GetRequiredService<IKernelInvoker>();
                if (backend == BackendKind.Remote)
                {
                    await provider.GetRequiredService<IWorkerPoolAdmin>().StartAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is TandemException or InvalidOperationException or IOException)
            {
                throw new TargetException($"the {backend} host did not start: {e.Message}");
            }

            var known = invoker.Kernels.FirstOrDefault(k => k.Name == inputs.KernelContract.Name)
                ?? throw new UsageException($"--kernel {inputs.KernelContract.Name}: the {backend} host knows no such kernel; its kernels are {string.Join(", ", invoker.Kernels.Select(k => k.Name))}");
            if (known.Hash != inputs.KernelContract.Hash)
            {
                throw new TargetException($"the {backend} host knows {known}, not {inputs.KernelContract} as the library describes it");
            }

            var cases = DrawPool(options, inputs, out var first);
            if (inputs.KernelContract.StateKind is { } kind)
            {
                try
                {
                    state = await invoker.CreateStateAsync(kind.Name, inputs.StateTensors(first), cancellationToken).ConfigureAwait(false);
                }
                catch (TandemException e)
                {
                    throw new TargetException($"building the {kind.Name} state on {backend} failed: {TandemTelemetryNames.Code(e.Code)}: {e.Message}");
                }
            }

            var target = new InProcessTarget(TandemTelemetryNames.Backend(backend), description, provider, invoker, state, cases, meter);
            if (await target.InvokeAsync(0, cancellationToken).ConfigureAwait(false) is { } error)
            {
                var detail = await target.ProbeAsync(cancellationToken).ConfigureAwait(false);
                throw new TargetException($"the first call of {inputs.KernelContract.Name} on {backend} failed with {error}: {detail}");
            }

            return target;
        }
        catch
        {
            state?.Dispose();
            meter.Dispose();
            await provider.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask<string?> InvokeAsync(long sequence, CancellationToken cancellationToken)
    {
        var request = _cases[sequence % _cases.Length].ToRequest(_state);
        try
        {
            await _invoker.InvokeAsync(request, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (TandemException e)
        {
            return TandemTelemetryNames.Code(e.Code);
        }
        catch (OperationCanceledException)
        {
            return "CANCELLED";
        }
        catch (Exception e)
        {
            // Not Tandem's taxonomy (a bug somewhere): counted under its type, so one bad call does not end the run.
            return $"UNEXPECTED_{e.GetType().Name}";
        }
    }

    public async ValueTask DisposeAsync()
    {
        _state?.Dispose();
        _meter.Dispose();
        await _services.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>The pool of inputs requests rotate over: <c>--input-pool</c> cases (fewer when one is large), the first with the state's tensors.</summary>
    internal static KernelCase[] DrawPool(RunOptions options, KernelInputs inputs, out KernelCase first)
    {
        first = inputs.Draw(options.Seed, withState: true);
        var bytes = Math.Max(1, first.Inputs.Sum(i => (long)i.Data.Length * ElementSize(i.DType)));
        var size = (int)Math.Clamp(RunOptions.MaxInputPoolBytes / bytes, 1, options.InputPool);
        var cases = new KernelCase[size];
        cases[0] = first;
        for (var i = 1; i < size; i++)
        {
            cases[i] = inputs.Draw(options.Seed + i, withState: false);
        }

        return cases;
    }

    private static int ElementSize(TensorDType dtype) => dtype switch
    {
        TensorDType.U8 => 1,
        TensorDType.I32 or TensorDType.F32 => 4,
        _ => 8,
    };

    private async Task<string> ProbeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _invoker.InvokeAsync(_cases[0].ToRequest(_state), cancellationToken).ConfigureAwait(false);
            return "it succeeded when tried again";
        }
        catch (TandemException e)
        {
            return e.Message;
        }
    }

    /// <summary>This checkout's tandem-worker, when the tool runs from a checkout; null lets Tandem.Remote look next to the app.</summary>
    private static string? RepositoryWorker()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "native", "target", "release", "tandem-worker");
            if (File.Exists(Path.Combine(dir.FullName, "Tandem.slnx")) && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

/// <summary>The target could not be set up (a host that does not start, a first call that fails, a server that is not there); exit code 1.</summary>
internal sealed class TargetException(string message) : Exception(message);
