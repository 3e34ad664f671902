namespace Tandem.Pricing;

/// <summary>Whether an option pays <c>S_T − K</c> (call) or <c>K − S_T</c> (put) when positive.</summary>
public enum OptionKind
{
    Put = 0,
    Call = 1,
}

/// <summary>A European option under geometric Brownian motion.</summary>
/// <param name="Spot">Price of the underlying now; finite, not negative.</param>
/// <param name="Strike">Strike price; finite, not negative.</param>
/// <param name="Rate">Continuously compounded risk-free rate; finite.</param>
/// <param name="Volatility">Annualised volatility; finite, not negative.</param>
/// <param name="Maturity">Time to expiry in years; finite, not negative.</param>
/// <param name="Kind">Call or put.</param>
public readonly record struct EuropeanOption(double Spot, double Strike, double Rate, double Volatility, double Maturity, OptionKind Kind);
