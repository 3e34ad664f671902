namespace Tandem.Pricing;

/// <summary>
/// <c>montecarlo.european</c>: Monte Carlo prices and standard errors of
/// European options, deterministic for a given seed. Failures surface as
/// <see cref="TandemException"/>.
/// </summary>
public interface IOptionPricing
{
    /// <exception cref="TandemException">INVALID_ARGUMENT naming the option and field, CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or INTERNAL.</exception>
    ValueTask<OptionPrices> PriceEuropeanAsync(ReadOnlyMemory<EuropeanOption> options, MonteCarloSettings settings, CancellationToken cancellationToken = default);
}
