using System.Globalization;

namespace Tandem.Soak;

/// <summary>
/// Makes call <c>id</c>: its kind, target and input follow from (seed, id)
/// alone, so a run is reproducible call by call; checks the result against
/// Managed's and books the outcome.
/// </summary>
internal sealed class CallRunner(SoakSettings settings, Workload workload, Target[] targets, Ledger ledger)
{
    /// <summary>Codes a call may end with while faults are injected (docs/reliability.md); anything else fails the soak.</summary>
    public static readonly TandemStatusCode[] Documented =
    [
        TandemStatusCode.Ok,
        TandemStatusCode.Unavailable,
        TandemStatusCode.DeadlineExceeded,
        TandemStatusCode.ResourceExhausted,
    ];

    /// <summary>Relative agreement of Managed and native Monte Carlo prices (same streams, different summation): MonteCarloContractTests' bound.</summary>
    private const double PriceTolerance = 1e-9;

    public async Task RunAsync(long id)
    {
        var mix = Mix((ulong)settings.Seed, (ulong)id);
        var kind = (mix % 100) switch
        {
            < 40 => CallKind.TopK,
            < 68 => CallKind.Price,
            < 95 => CallKind.Hash,
            _ => CallKind.HashStream,
        };
        var targetIndex = ((mix >> 8) % 1000) < (ulong)(settings.RemoteShare * 1000) ? 0 : 1;
        var target = targets[targetIndex];
        var index = (int)((mix >> 24) % 256);

        ledger.Begin(id, kind, targetIndex);
        string? mismatch;
        try
        {
            mismatch = kind switch
            {
                CallKind.TopK => await TopKAsync(target, workload.TopK[index]),
                CallKind.Price => await PriceAsync(target, workload.Prices[index]),
                CallKind.Hash => await HashAsync(target, workload.Hashes[index]),
                _ => await HashStreamAsync(target, workload.Hashes[index]),
            };
        }
        catch (TandemException e)
        {
            var documented = Array.IndexOf(Documented, e.Code) >= 0;
            ledger.End(id, (byte)e.Code, documented ? null : $"undocumented {e.Code} from {e.Backend}: {e.Message} (correlation id {e.CorrelationId})");
            return;
        }
        catch (Exception e)
        {
            ledger.End(id, Ledger.UnexpectedException, $"{e.GetType().Name}: {e.Message}");
            return;
        }

        ledger.End(id, mismatch is null ? (byte)TandemStatusCode.Ok : Ledger.WrongResult, mismatch is null ? null : $"case {index}: {mismatch}");
    }

    private static async Task<string?> TopKAsync(Target target, TopKCase call)
    {
        var result = await target.Search.TopKAsync(Workload.Collection, call.Queries, call.K, call.Metric);
        return result.Ids.AsSpan().SequenceEqual(call.Ids) && result.Scores.AsSpan().SequenceEqual(call.Scores)
            ? null
            : $"top-k on {result.Backend} differs from Managed: ids [{string.Join(',', result.Ids)}] vs [{string.Join(',', call.Ids)}]";
    }

    private static async Task<string?> PriceAsync(Target target, PriceCase call)
    {
        var result = await target.Pricing.PriceEuropeanAsync(call.Options, call.Settings);
        for (var row = 0; row < call.Prices.Length; row++)
        {
            if (!Close(result.Prices[row], call.Prices[row]) || !Close(result.StandardErrors[row], call.StandardErrors[row]))
            {
                return string.Create(CultureInfo.InvariantCulture, $"price row {row} on {result.Backend}: {result.Prices[row]:R} ± {result.StandardErrors[row]:R} vs Managed {call.Prices[row]:R} ± {call.StandardErrors[row]:R}");
            }
        }

        return null;
    }

    private static async Task<string?> HashAsync(Target target, HashCase call)
    {
        var digest = await target.Hashing.HashAsync(call.Data, call.OutputLength);
        return digest.AsSpan().SequenceEqual(call.Digest) ? null : $"BLAKE3 of {call.Data.Length} bytes differs from Managed";
    }

    private static async Task<string?> HashStreamAsync(Target target, HashCase call)
    {
        await using var stream = await target.Hashing.OpenStreamAsync();
        var chunk = (call.Data.Length + call.Chunks - 1) / call.Chunks;
        for (var offset = 0; offset < call.Data.Length; offset += chunk)
        {
            await stream.AppendAsync(call.Data.AsMemory(offset, Math.Min(chunk, call.Data.Length - offset)));
        }

        var digest = await stream.FinalizeAsync(call.OutputLength);
        return digest.AsSpan().SequenceEqual(call.Digest) ? null : $"streamed BLAKE3 of {call.Data.Length} bytes in {call.Chunks} chunks on {stream.Backend} differs from Managed";
    }

    private static bool Close(double actual, double expected) =>
        actual == expected || Math.Abs(actual - expected) <= PriceTolerance * Math.Abs(expected);

    /// <summary>SplitMix64 of (seed, id): the call's dice.</summary>
    private static ulong Mix(ulong seed, ulong id)
    {
        var z = (seed * 0x9E3779B97F4A7C15UL) ^ (id + 0x632BE59BD9B4E019UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
