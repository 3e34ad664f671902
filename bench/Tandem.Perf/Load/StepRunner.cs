using System.Diagnostics;
using Tandem.Perf.Report;
using Tandem.Perf.Targets;
using Tandem.Perf.Telemetry;

namespace Tandem.Perf.Load;

/// <summary>
/// Runs one step against a target: requests during the warm-up are sent but
/// not recorded; those started (closed loop) or due (open loop) inside the
/// measured window are; the server-side telemetry is read at the window's
/// edges. The step ends when the last request has completed or, at the
/// latest, <see cref="StepPlan.Drain"/> after the window: what is still
/// running then is cancelled and reported as unfinished.
/// </summary>
internal static class StepRunner
{
    public static async Task<StepResult> RunAsync(IPerfTarget target, StepPlan plan, StepRecorder recorder, CancellationToken cancellationToken)
    {
        var time = TimeProvider.System;
        var frequency = time.TimestampFrequency;
        var start = time.GetTimestamp();
        var windowStart = start + Ticks(plan.WarmUp, frequency);
        var windowEnd = windowStart + Ticks(plan.Measurement, frequency);
        var total = plan.WarmUp + plan.Measurement;

        using var drain = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long started = 0, completed = 0, cutOff = 0;

        async ValueTask SendAsync(long sequence, long due)
        {
            Interlocked.Increment(ref started);
            var error = await target.InvokeAsync(sequence, drain.Token).ConfigureAwait(false);
            var end = time.GetTimestamp();
            Interlocked.Increment(ref completed);
            if (drain.IsCancellationRequested)
            {
                Interlocked.Increment(ref cutOff);
            }
            else if (due >= windowStart && due < windowEnd)
            {
                recorder.Record((long)((end - due) * 1e9 / frequency), error);
            }
        }

        var window = WindowAsync(target.Telemetry, plan, time, cancellationToken);
        Task<OpenLoopStats?> load;
        if (plan.Concurrency is { } callers)
        {
            load = ClosedLoopAsync(callers, total, time, SendAsync);
        }
        else
        {
            load = OpenLoopAsync(plan, total, time, SendAsync, drain.Token);
        }

        var (server, cpu, loadBefore, loadAfter) = await window.ConfigureAwait(false);
        drain.CancelAfter(plan.Drain);
        OpenLoopStats? open = null;
        try
        {
            open = await load.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The drain period ended with requests still running; they are counted below.
        }

        var (latency, errors) = recorder.Snapshot();
        var ok = latency.Count;
        var count = ok + errors.Values.Sum();
        var seconds = plan.Measurement.TotalSeconds;
        return new StepResult
        {
            Step = plan.Label,
            Concurrency = plan.Concurrency,
            RequestRate = plan.RequestRate,
            WindowSeconds = seconds,
            Count = count,
            Ok = ok,
            Errors = errors,
            Unfinished = Interlocked.Read(ref cutOff) + Interlocked.Read(ref started) - Interlocked.Read(ref completed),
            ThroughputPerSecond = ok / seconds,
            Latency = ok == 0 ? null : new LatencyFigures(
                latency.Percentile(50) / 1e6, latency.Percentile(90) / 1e6, latency.Percentile(95) / 1e6,
                latency.Percentile(99) / 1e6, latency.Max / 1e6, latency.Mean / 1e6),
            ClientCpuUsPerCall = count == 0 ? null : cpu.TotalMicroseconds / count,
            SendLagP99Ms = open is null ? null : open.SendLag.Percentile(99) / 1e6,
            WaitedForSlot = open?.WaitedForSlot,
            LoadBefore = loadBefore,
            LoadAfter = loadAfter,
            Server = server,
        };
    }

    /// <summary>The measured window's edges: telemetry opened and closed, this process's CPU time and the load average read.</summary>
    private static async Task<(ServerStats? Server, TimeSpan Cpu, double? LoadBefore, double? LoadAfter)> WindowAsync(IServerTelemetry telemetry, StepPlan plan, TimeProvider time, CancellationToken cancellationToken)
    {
        await Task.Delay(plan.WarmUp, time, cancellationToken).ConfigureAwait(false);
        var loadBefore = RunEnvironments.LoadAverage();
        await telemetry.BeginAsync(cancellationToken).ConfigureAwait(false);
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        await Task.Delay(plan.Measurement, time, cancellationToken).ConfigureAwait(false);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        var server = await telemetry.EndAsync(cancellationToken).ConfigureAwait(false);
        return (server, cpu, loadBefore, RunEnvironments.LoadAverage());
    }

    private static async Task<OpenLoopStats?> ClosedLoopAsync(int callers, TimeSpan total, TimeProvider time, Func<long, long, ValueTask> send)
    {
        var end = time.GetTimestamp() + Ticks(total, time.TimestampFrequency);
        long sequence = -1;
        var workers = new Task[callers];
        for (var c = 0; c < callers; c++)
        {
            workers[c] = Task.Run(async () =>
            {
                for (var now = time.GetTimestamp(); now < end; now = time.GetTimestamp())
                {
                    await send(Interlocked.Increment(ref sequence), now).ConfigureAwait(false);
                }
            });
        }

        await Task.WhenAll(workers).ConfigureAwait(false);
        return null;
    }

    private static async Task<OpenLoopStats?> OpenLoopAsync(StepPlan plan, TimeSpan total, TimeProvider time, Func<long, long, ValueTask> send, CancellationToken drain) =>
        await OpenLoop.RunAsync(plan.Schedule!(), total, plan.MaxOutstanding, time, send, drain).ConfigureAwait(false);

    private static long Ticks(TimeSpan span, long frequency) => (long)(span.TotalSeconds * frequency);
}
