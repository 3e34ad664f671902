using System.Buffers;
using Tandem.Internal.Pricing;

namespace Tandem.Internal.Native;

/// <summary><c>montecarlo.european</c> on libtandem.so; rows and outputs cross pinned, never copied.</summary>
internal sealed class NativePricingBackend(NativeKernel kernel, TandemOptions options) : IPricingBackend
{
    /// <summary>Rough multiply-adds per path, to compare a call's work with <see cref="TandemOptions.SyncWorkThreshold"/>.</summary>
    private const long WorkPerPath = 64;

    public BackendKind Kind => BackendKind.Native;

    public async ValueTask PriceAsync(ReadOnlyMemory<double> rows, ReadOnlyMemory<long> rowKeys, long paths, ulong seed, bool antithetic, double[] prices, double[] standardErrors, CancellationToken cancellationToken)
    {
        using var rowPin = rows.Pin();
        using var keyPin = rowKeys.Pin();
        using var pricePin = prices.AsMemory().Pin();
        using var errorPin = standardErrors.AsMemory().Pin();
        var args = Arguments(rowPin, keyPin, pricePin, errorPin, rowKeys.Length, paths, seed, antithetic);
        var work = rowKeys.Length * paths * WorkPerPath;
        await kernel.RunAsync(0, args, work < options.SyncWorkThreshold, options.CallTimeout, cancellationToken).ConfigureAwait(false);
    }

    private static unsafe NativeCallArgs Arguments(MemoryHandle rows, MemoryHandle keys, MemoryHandle prices, MemoryHandle errors, int batch, long paths, ulong seed, bool antithetic)
    {
        var args = default(NativeCallArgs);
        args.AddInput(NativeTensor.Create((double*)rows.Pointer, batch * 6, NativeDType.F64, batch, 6));
        args.AddInput(NativeTensor.Create((long*)keys.Pointer, batch, NativeDType.I64, batch));
        args.AddOutput(NativeTensor.Create((double*)prices.Pointer, batch, NativeDType.F64, batch));
        args.AddOutput(NativeTensor.Create((double*)errors.Pointer, batch, NativeDType.F64, batch));
        args.AddParam(NativeParam.Int(paths));
        args.AddParam(NativeParam.Int(unchecked((long)seed)));
        args.AddParam(NativeParam.Int(antithetic ? 1 : 0));
        return args;
    }
}
