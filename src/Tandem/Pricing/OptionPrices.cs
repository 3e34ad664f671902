namespace Tandem.Pricing;

/// <summary>Monte Carlo prices, one per option, in request order.</summary>
public sealed class OptionPrices
{
    internal OptionPrices(double[] prices, double[] standardErrors, BackendKind backend)
    {
        Prices = prices;
        StandardErrors = standardErrors;
        Backend = backend;
    }

    /// <summary>Discounted mean payoffs.</summary>
    public double[] Prices { get; }

    /// <summary>Standard errors of the prices (0 for a single path, where it is undefined).</summary>
    public double[] StandardErrors { get; }

    /// <summary>The backend that computed the prices.</summary>
    public BackendKind Backend { get; }
}
