namespace Tandem.Internal.Pricing;

/// <summary>One backend's <c>montecarlo.european</c>. Inputs are already validated.</summary>
internal interface IPricingBackend
{
    BackendKind Kind { get; }

    /// <summary>
    /// Prices <paramref name="rows"/> (6 values per option) whose random
    /// streams are keyed by <paramref name="rowKeys"/>, into the outputs.
    /// </summary>
    ValueTask PriceAsync(ReadOnlyMemory<double> rows, ReadOnlyMemory<long> rowKeys, long paths, ulong seed, bool antithetic, double[] prices, double[] standardErrors, CancellationToken cancellationToken);
}
