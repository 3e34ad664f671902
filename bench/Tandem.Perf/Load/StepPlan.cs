namespace Tandem.Perf.Load;

/// <summary>
/// One step: closed loop at <see cref="Concurrency"/> callers, or open loop
/// on a schedule made fresh for the step; warm-up, then the measured
/// window, then at most <see cref="Drain"/> for requests still running.
/// </summary>
internal sealed record StepPlan(
    string Label,
    int? Concurrency,
    double? RequestRate,
    Func<RequestSchedule>? Schedule,
    TimeSpan WarmUp,
    TimeSpan Measurement,
    TimeSpan Drain,
    int MaxOutstanding);
