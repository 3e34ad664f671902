using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Pricing;

namespace Tandem.Internal.Pricing;

/// <summary>The <see cref="IOptionPricing"/> facade: validates, packs rows, runs on the chosen backend.</summary>
internal sealed class OptionPricing(KernelBackends backends) : IOptionPricing
{
    private const string Kernel = KernelContracts.MonteCarloEuropean;
    private static readonly string[] Fields = ["spot", "strike", "rate", "volatility", "maturity", "call"];

    /// <summary>Rough multiply-adds per path, to compare a call's work with <see cref="TandemOptions.SyncWorkThreshold"/>.</summary>
    private const long WorkPerPath = 64;

    public async ValueTask<OptionPrices> PriceEuropeanAsync(ReadOnlyMemory<EuropeanOption> options, MonteCarloSettings settings, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var rows = Pack(options.Span);
        Validate(rows, settings.Paths);
        if (cancellationToken.IsCancellationRequested)
        {
            throw new TandemException(TandemStatusCode.Cancelled, "the call was cancelled by the caller before it started", Kernel);
        }

        var batch = options.Length;
        var keys = new long[batch];
        for (var i = 0; i < batch; i++)
        {
            keys[i] = i;
        }

        var prices = new double[batch];
        var errors = new double[batch];
        var backend = backends.For(Kernel);
        using var call = new KernelCall(KernelContracts.European) { Work = batch * settings.Paths * WorkPerPath };
        call.Input<double>(rows, batch, 6)
            .Input<long>(keys, batch)
            .Output(prices.AsMemory(), batch)
            .Output(errors.AsMemory(), batch)
            .Param(settings.Paths)
            .Param(unchecked((long)settings.Seed))
            .Param(settings.Antithetic ? 1 : 0);
        await backends.InvokeAsync(backend, call, cancellationToken).ConfigureAwait(false);
        return new OptionPrices(prices, errors, backend.Kind);
    }

    private static double[] Pack(ReadOnlySpan<EuropeanOption> options)
    {
        var rows = new double[options.Length * 6];
        for (var i = 0; i < options.Length; i++)
        {
            var o = options[i];
            rows.AsSpan(i * 6, 6).SetValues(o.Spot, o.Strike, o.Rate, o.Volatility, o.Maturity, (double)(int)o.Kind);
        }

        return rows;
    }

    /// <summary>Per-field rules, with the Rust kernel's messages; paths are checked against the contract with the call.</summary>
    internal static void Validate(ReadOnlySpan<double> rows, long paths)
    {
        if (rows.IsEmpty)
        {
            throw TandemException.Invalid(Kernel, "tensor 'options' holds no rows; send at least one option");
        }

        for (var row = 0; row < rows.Length / 6; row++)
        {
            var values = rows.Slice(row * 6, 6);
            for (var field = 0; field < 6; field++)
            {
                if (!double.IsFinite(values[field]))
                {
                    throw TandemException.Invalid(Kernel, $"tensor 'options' row {row} field '{Fields[field]}' is {values[field]}; it must be finite");
                }
            }

            foreach (var field in (ReadOnlySpan<int>)[0, 1, 3, 4])
            {
                if (values[field] < 0)
                {
                    throw TandemException.Invalid(Kernel, $"tensor 'options' row {row} field '{Fields[field]}' is {values[field]}; it must not be negative");
                }
            }

            if (values[5] is not (0 or 1))
            {
                throw TandemException.Invalid(Kernel, $"tensor 'options' row {row} field 'call' is {values[5]}; use 1 for a call or 0 for a put");
            }
        }
    }
}

internal static class SpanExtensions
{
    public static void SetValues(this Span<double> span, double a, double b, double c, double d, double e, double f)
    {
        span[0] = a;
        span[1] = b;
        span[2] = c;
        span[3] = d;
        span[4] = e;
        span[5] = f;
    }
}
