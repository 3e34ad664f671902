using System.ComponentModel.DataAnnotations;

namespace Tandem;

/// <summary>
/// Retries, circuit breaking and timeouts around each backend call
/// (<see cref="TandemOptions.Resilience"/>), built on Polly v8. Only
/// idempotent kernels are retried, and only for RESOURCE_EXHAUSTED,
/// UNAVAILABLE and DEADLINE_EXCEEDED, within a retry budget.
/// </summary>
public sealed class ResilienceOptions
{
    /// <summary>Retries after the first attempt.</summary>
    /// <value>The default is 2.</value>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = 2;

    /// <summary>Delay before the first retry; later ones back off exponentially, with jitter.</summary>
    /// <value>The default is 20 ms.</value>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Retries allowed as a share of calls (a token bucket: each call adds this fraction of a retry, up to 10 in reserve).</summary>
    /// <value>The default is 0.1 (one retry per ten calls, sustained).</value>
    [Range(0.0, 1.0)]
    public double RetryBudget { get; set; } = 0.1;

    /// <summary>Share of failed calls (INTERNAL, UNAVAILABLE) in the sampling window that opens the circuit.</summary>
    /// <value>The default is 0.5.</value>
    [Range(0.01, 1.0)]
    public double BreakerFailureRatio { get; set; } = 0.5;

    /// <summary>Calls in the sampling window before the breaker may open.</summary>
    /// <value>The default is 20.</value>
    [Range(2, int.MaxValue)]
    public int BreakerMinimumThroughput { get; set; } = 20;

    /// <summary>Window over which the failure ratio is measured.</summary>
    /// <value>The default is 10 s.</value>
    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long an open circuit refuses calls before letting one through.</summary>
    /// <value>The default is 5 s.</value>
    public TimeSpan BreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Limit on one backend call including its retries; null means none (<see cref="TandemOptions.CallTimeout"/> still bounds each attempt).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public TimeSpan? Timeout { get; set; }
}
