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
/// within a token-bucket budget) → circuit breaker. Synchronous calls (short
/// by design, their caller blocked) go through the same circuit breaker but
/// are not retried. Pipelines are rebuilt when the options change.
/// </summary>
internal sealed class BackendResilience(TimeProvider time, Func<TandemOptions> options)
{
    private static readonly ResiliencePropertyKey<bool> Idempotent = new("tandem.idempotent");
    private readonly Lock _lock = new();
    private readonly Dictionary<BackendKind, (ResiliencePipeline Outer, ResiliencePipeline Breaker)> _pipelines = [];
    private readonly RetryBudget _budget = new();
    private ResilienceOptions? _builtFrom;

    public async ValueTask ExecuteAsync(IKernelBackend backend, KernelCall call, CancellationToken cancellationToken)
    {
        var settings = options().Resilience;
        _budget.Deposit(settings.RetryBudget);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(Idempotent, call.Descriptor.Flags.Idempotent);
        try
        {
            var (outer, breaker) = Pipelines(backend.Kind, settings);
            await outer.ExecuteAsync(
                static (ctx, state) => state.breaker.ExecuteAsync(
                    static (inner, s) => s.backend.InvokeAsync(s.call, inner.CancellationToken),
                    ctx,
                    (state.backend, state.call)),
                context,
                (backend, call, breaker)).ConfigureAwait(false);
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

    /// <summary>A short synchronous call: the backend's circuit breaker, no retries.</summary>
    public void Execute(IInProcessKernelBackend backend, KernelCall call)
    {
        var settings = options().Resilience;
        var context = ResilienceContextPool.Shared.Get(CancellationToken.None);
        try
        {
            Pipelines(backend.Kind, settings).Breaker.Execute(static (_, state) => state.backend.Invoke(state.call), context, (backend, call));
        }
        catch (BrokenCircuitException e)
        {
            throw CircuitOpen(backend, call, settings, e);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private static TandemException CircuitOpen(IKernelBackend backend, KernelCall call, ResilienceOptions settings, BrokenCircuitException e) =>
        new(TandemStatusCode.Unavailable, $"the {backend.Kind} backend's circuit is open after repeated failures; calls resume after {settings.BreakerBreakDuration.TotalSeconds:0.#} s", call.Kernel, backend.Kind, innerException: e);

    private (ResiliencePipeline Outer, ResiliencePipeline Breaker) Pipelines(BackendKind backend, ResilienceOptions settings)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_builtFrom, settings))
            {
                _pipelines.Clear();
                _builtFrom = settings;
            }

            if (!_pipelines.TryGetValue(backend, out var pipelines))
            {
                pipelines = (BuildOuter(settings), BuildBreaker(settings));
                _pipelines[backend] = pipelines;
            }

            return pipelines;
        }
    }

    private ResiliencePipeline BuildOuter(ResilienceOptions settings)
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

        return builder.Build();
    }

    private ResiliencePipeline BuildBreaker(ResilienceOptions settings)
    {
        var builder = new ResiliencePipelineBuilder { TimeProvider = time };
        builder.AddCircuitBreaker(new CircuitBreakerStrategyOptions
        {
            FailureRatio = settings.BreakerFailureRatio,
            MinimumThroughput = settings.BreakerMinimumThroughput,
            SamplingDuration = settings.BreakerSamplingDuration,
            BreakDuration = settings.BreakerBreakDuration,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is TandemException e && TandemStatusCodes.CountsAgainstBackend(e.Code)),
        });
        return builder.Build();
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
