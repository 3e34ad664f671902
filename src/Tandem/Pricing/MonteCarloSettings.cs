using System.ComponentModel.DataAnnotations;

namespace Tandem.Pricing;

/// <summary>How many paths to draw and from which random stream.</summary>
public sealed record MonteCarloSettings
{
    /// <summary>Most paths a call may ask for.</summary>
    public const long MaxPaths = 1_000_000_000;

    /// <summary>Paths per option.</summary>
    /// <value>The default is 100,000.</value>
    [Range(1L, MaxPaths)]
    public long Paths { get; init; } = 100_000;

    /// <summary>
    /// Seed of the counter-based generator. A row's random numbers depend only
    /// on the seed, the row's index in this request and the path index, so the
    /// same request gives bitwise the same prices on one backend.
    /// </summary>
    /// <value>The default is 0.</value>
    public ulong Seed { get; init; }

    /// <summary>Whether each sample averages the payoffs at z and −z (antithetic variates).</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool Antithetic { get; init; }
}
