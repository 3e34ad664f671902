using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;
using Tandem.Internal.Kernels;

namespace Tandem.Internal.Resilience;

/// <summary>
/// Polly v8 pipelines around each backend call, one set per backend (so a
/// failing Native backend opens its own circuit): timeout → retry with
/// exponential backoff and jitter (idempotent kernels, retryable codes,
/// within a token-bucket budget) → circuit breaker (<see cref="CircuitBreaker"/>,
/// as the pipeline's innermost strategy). Synchronous calls (short by
/// design, their caller blocked) go through the same circuit breaker
/// directly — one read of its state word — and are not retried. Pipelines
/// and breakers are rebuilt when the options change.
/// </summary>
internal sealed class BackendResilience(TimeProvider time, Func<TandemOptions> options)
{
    private static readonly ResiliencePropertyKey<bool> Idempotent = new("tandem.idempotent");
    private readonly Lock _lock = new();
    private readonly RetryBudget _budget = new();
    private volatile Pipelines? _pipelines;

    public async ValueTask ExecuteAsync(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken)
    {
        var settings = options().Resilience;
        _budget.Deposit(settings.RetryBudget);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(Idempotent, call.Descriptor.Flags.Idempotent);
        try
        {
            await For(settings).Outer[(int)backend.Kind].ExecuteAsync(
                static (inner, s) => s.backend.InvokeAsync(s.call, inner.CancellationToken),
                context,
                (backend, call)).ConfigureAwait(false);
        }
        catch (BrokenCircuitException e)
        {
            throw CircuitOpen(backend, call, settings, e);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller", call.Kernel, backend.Kind, innerException: e);
        }
        catch (TimeoutRejectedException e)
        {
            throw new TandemException(TandemStatusCode.DeadlineExceeded, $"the call did not complete within Tandem:Resilience:Timeout ({settings.Timeout})", call.Kernel, backend.Kind, innerException: e);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>
    /// A short synchronous call that started at <paramref name="started"/>
    /// (a <see cref="TimeProvider"/> timestamp): the backend's circuit
    /// breaker, no retries.
    /// </summary>
    public void Execute(IInProcessKernelBackend backend, KernelCall call, long started)
    {
        var settings = options().Resilience;
        var breaker = For(settings).Breakers[(int)backend.Kind];
        if (!breaker.TryEnter(started, out var probe))
        {
            throw CircuitOpen(backend, call, settings, null);
        }

        try
        {
            backend.Invoke(call);
        }
        catch (Exception e)
        {
            breaker.Complete(time.GetTimestamp(), probe, CircuitBreaker.Counts(e));
            throw;
        }

        breaker.Complete(started, probe, failed: false);
    }

    private static TandemException CircuitOpen(IKernelBackend backend, KernelCall call, ResilienceOptions settings, Exception? inner) =>
        new(TandemStatusCode.Unavailable, $"the {backend.Kind} backend's circuit is open after repeated failures; calls resume after {settings.BreakerBreakDuration.TotalSeconds:0.#} s", call.Kernel, backend.Kind, innerException: inner);

    /// <summary>The pipelines and breakers built from <paramref name="settings"/>: a field read unless the options changed.</summary>
    private Pipelines For(ResilienceOptions settings)
    {
        var current = _pipelines;
        if (current is not null && ReferenceEquals(current.Settings, settings))
        {
            return current;
        }

        lock (_lock)
        {
            current = _pipelines;
            if (current is null || !ReferenceEquals(current.Settings, settings))
            {
                current = new Pipelines(settings, Enum.GetValues<BackendKind>().Length, BuildOuter, time.TimestampFrequency);
                _pipelines = current;
            }

            return current;
        }
    }

    private ResiliencePipeline BuildOuter(ResilienceOptions settings, CircuitBreaker breaker)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        if (settings.Timeout is { } timeout)
        {
            builder.AddTimeout(timeout);
        }

        if (settings.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = settings.MaxRetries,
                Delay = settings.RetryBaseDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is TandemException e
                    && e.IsRetryable
                    && args.Context.Properties.GetValue(Idempotent, false)
                    && !args.Context.CancellationToken.IsCancellationRequested
                    && _budget.TryWithdraw()),
            });
        }

        builder.AddStrategy(_ => new BreakerStrategy(breaker, time), new BreakerStrategy.Options());
        return builder.Build();
    }

    /// <summary>One pipeline and one circuit breaker per backend, indexed by <see cref="BackendKind"/>, built from one <see cref="ResilienceOptions"/>.</summary>
    private sealed class Pipelines
    {
        public Pipelines(ResilienceOptions settings, int backends, Func<ResilienceOptions, CircuitBreaker, ResiliencePipeline> build, long timestampFrequency)
        {
            Settings = settings;
            Breakers = new CircuitBreaker[backends];
            Outer = new ResiliencePipeline[backends];
            for (var i = 0; i < backends; i++)
            {
                Breakers[i] = new CircuitBreaker(settings, timestampFrequency);
                Outer[i] = build(settings, Breakers[i]);
            }
        }

        public ResilienceOptions Settings { get; }

        public CircuitBreaker[] Breakers { get; }

        public ResiliencePipeline[] Outer { get; }
    }
    /// <summary>A token bucket: each call adds a fraction of a retry, each retry takes one.</summary>
    private sealed class RetryBudget
    {
        private const double Reserve = 10;
        private readonly Lock _lock = new();
        private double _tokens = Reserve;

        public void Deposit(double fraction)
        {
            lock (_lock)
            {
                _tokens = Math.Min(Reserve, _tokens + fraction);
            }
        }

        public bool TryWithdraw()
        {
            lock (_lock)
            {
                if (_tokens < 1)
                {
                    return false;
                }

                _tokens--;
                return true;
            }
        }
    }
}
