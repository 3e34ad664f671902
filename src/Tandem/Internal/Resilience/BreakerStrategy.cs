using Polly;
using Polly.CircuitBreaker;

namespace Tandem.Internal.Resilience;

/// <summary>
/// <see cref="CircuitBreaker"/> as the innermost strategy of a backend's
/// Polly pipeline, so asynchronous and synchronous calls share one circuit.
/// An open circuit is a <see cref="BrokenCircuitException"/> outcome, which
/// the retry strategy outside does not retry.
/// </summary>
internal sealed class BreakerStrategy(CircuitBreaker breaker, TimeProvider time) : ResilienceStrategy
{
    protected override async ValueTask<Outcome<TResult>> ExecuteCore<TResult, TState>(
        Func<ResilienceContext, TState, ValueTask<Outcome<TResult>>> callback,
        ResilienceContext context,
        TState state)
    {
        if (!breaker.TryEnter(time.GetTimestamp(), out var probe))
        {
            return Outcome.FromException<TResult>(new BrokenCircuitException("the circuit is open"));
        }

        var outcome = await callback(context, state).ConfigureAwait(context.ContinueOnCapturedContext);
        breaker.Complete(time.GetTimestamp(), probe, CircuitBreaker.Counts(outcome.Exception));
        return outcome;
    }

    /// <summary>The options Polly's builder asks of every strategy; the breaker's own settings are <see cref="ResilienceOptions"/>'.</summary>
    internal sealed class Options : ResilienceStrategyOptions
    {
        public Options() => Name = "tandem-circuit-breaker";
    }
}
