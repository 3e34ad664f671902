using System.Diagnostics;
using Tandem.Remote;

namespace Tandem.Soak;

/// <summary>The faults the chaos driver injects.</summary>
internal enum FaultKind
{
    /// <summary>kill -9 of a serving worker; the supervisor restarts its slot.</summary>
    Kill = 0,

    /// <summary>SIGSTOP of a worker for 0.5–2 s, then SIGCONT: a hang that deadlines and ejection must route around.</summary>
    Stall = 1,

    /// <summary>A worker run at about 70 % duty for 2 s (SIGSTOP 15 ms / SIGCONT 35 ms): slow, never quite hung.</summary>
    Slow = 2,

    /// <summary>IWorkerPoolAdmin.RestartAsync of one worker.</summary>
    Restart = 3,

    /// <summary>
    /// INativeLibraryAdmin.HotSwapAsync of the in-process library: to a copy
    /// of libtandem.so (at most --max-hot-swaps times: each keeps the old
    /// library mapped for the life of the process, operations.md), otherwise
    /// and every second time to a truncated copy, which must be refused with
    /// FAILED_PRECONDITION while the current library keeps serving.
    /// </summary>
    HotSwap = 4,

    /// <summary>Options reloaded for 1–2.5 s (batching off, result cache on, kernels moved to another backend, or fallback off during a kill), then restored.</summary>
    Flags = 5,
}

/// <summary>One injected fault: from injection until the pool was whole again.</summary>
internal sealed record Fault(FaultKind Kind, string Detail, long Started, long Recovered);

/// <summary>
/// Injects one fault at a time, in an order and with victims and durations
/// drawn from the seed (each cycle is every kind once, shuffled), waits until
/// the Remote pool serves with every worker again, pauses, and repeats. A
/// stopped worker is always continued and a changed option always restored,
/// even when the run stops.
/// </summary>
internal sealed class ChaosDriver(SoakSettings settings, Target remote, Target native, string[] libraryCopies, string brokenLibrary, ProcessRegistry processes, Ledger ledger)
{
    private static readonly TimeSpan RecoveryLimit = TimeSpan.FromSeconds(30);
    private static readonly string[] Kernels = ["similarity.topk", "montecarlo.european", "hash.blake3"];
    private readonly List<Fault> _faults = [];
    private readonly IWorkerPoolAdmin _pool = remote.Pool ?? throw new ArgumentException("the Remote target has no pool", nameof(remote));
    private int _swaps;
    private int _swapFaults;

    private int _completedCycles;

    /// <summary>Cycles in which every fault kind was injected once (read by the call loops).</summary>
    public int CompletedCycles => Volatile.Read(ref _completedCycles);

    public IReadOnlyList<Fault> Faults
    {
        get
        {
            lock (_faults)
            {
                return [.. _faults];
            }
        }
    }

    public async Task RunAsync(CancellationToken stop)
    {
        var random = new Random(settings.Seed ^ 0x5EED);
        var kinds = settings.Faults.ToArray();
        while (!stop.IsCancellationRequested)
        {
            random.Shuffle(kinds);
            foreach (var kind in kinds)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(settings.FaultGapMs * (0.5 + random.NextDouble())), stop);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                var started = Stopwatch.GetTimestamp();
                string detail;
                try
                {
                    detail = await InjectAsync(kind, random);
                }
                catch (Exception e)
                {
                    ledger.Fail($"injecting {kind} failed: {e.GetType().Name}: {e.Message}");
                    detail = "failed";
                }

                await WaitUntilWholeAsync(kind, detail);
                lock (_faults)
                {
                    _faults.Add(new Fault(kind, detail, started, Stopwatch.GetTimestamp()));
                }
            }

            Interlocked.Increment(ref _completedCycles);
        }
    }

    private async Task<string> InjectAsync(FaultKind kind, Random random)
    {
        switch (kind)
        {
            case FaultKind.Kill:
                return Kill(Victim(random));
            case FaultKind.Stall:
            {
                var victim = Victim(random);
                var pause = TimeSpan.FromMilliseconds(500 + random.Next(1500));
                Posix.Signal(victim.ProcessId!.Value, Posix.SigStop);
                try
                {
                    await Task.Delay(pause);
                }
                finally
                {
                    Posix.Signal(victim.ProcessId.Value, Posix.SigCont);
                }

                return $"{victim.Name} (pid {victim.ProcessId}) stopped {pause.TotalMilliseconds:F0} ms";
            }

            case FaultKind.Slow:
            {
                var victim = Victim(random);
                var pid = victim.ProcessId!.Value;
                var until = Stopwatch.GetTimestamp() + (2 * Stopwatch.Frequency);
                try
                {
                    while (Stopwatch.GetTimestamp() < until && Posix.Signal(pid, Posix.SigStop))
                    {
                        await Task.Delay(15);
                        Posix.Signal(pid, Posix.SigCont);
                        await Task.Delay(35);
                    }
                }
                finally
                {
                    Posix.Signal(pid, Posix.SigCont);
                }

                return $"{victim.Name} (pid {pid}) slowed for 2 s";
            }

            case FaultKind.Restart:
            {
                var victim = Victim(random);
                using var limit = new CancellationTokenSource(RecoveryLimit);
                await _pool.RestartAsync(victim.Name, limit.Token);
                return $"{victim.Name} (pid {victim.ProcessId}) restarted";
            }

            case FaultKind.HotSwap:
                return _swapFaults++ % 2 == 1 || _swaps >= settings.MaxHotSwaps ? await RefusedHotSwapAsync() : await HotSwapAsync();

            default:
                return await FlipOptionsAsync(random);
        }
    }

    private async Task<string> HotSwapAsync()
    {
        var before = native.Native.Current.Generation;
        var copy = libraryCopies[_swaps++ % libraryCopies.Length];
        var after = await native.Native.HotSwapAsync(copy);
        if (after.Generation <= before)
        {
            ledger.Fail($"hot swap to {copy} returned generation {after.Generation}, not above {before}");
        }

        return $"generation {before} -> {after.Generation}";
    }

    private async Task<string> RefusedHotSwapAsync()
    {
        var before = native.Native.Current.Generation;
        try
        {
            await native.Native.HotSwapAsync(brokenLibrary);
            ledger.Fail($"hot swap to the truncated library {brokenLibrary} was accepted");
        }
        catch (TandemException e) when (e.Code == TandemStatusCode.FailedPrecondition)
        {
        }

        if (native.Native.Current.Generation != before)
        {
            ledger.Fail($"a refused hot swap changed the generation from {before} to {native.Native.Current.Generation}");
        }

        return $"truncated library refused, generation {before} kept";
    }

    private async Task<string> FlipOptionsAsync(Random random)
    {
        var hold = TimeSpan.FromMilliseconds(1000 + random.Next(1500));
        Dictionary<string, string?> values = new(StringComparer.Ordinal);
        Target[] targets = [remote, native];
        string what;
        var killDuringHold = false;
        switch (random.Next(4))
        {
            case 0:
                what = "batching off";
                values["Tandem:Batching:Enabled"] = "false";
                break;
            case 1:
                what = "result cache on";
                foreach (var kernel in Kernels)
                {
                    values[$"Tandem:Kernels:{kernel}:Cache"] = "true";
                }

                break;
            case 2:
                what = "Monte Carlo on Native and BLAKE3 on Managed (Remote target)";
                values["Tandem:Kernels:montecarlo.european:Backend"] = nameof(BackendKind.Native);
                values["Tandem:Kernels:hash.blake3:Backend"] = nameof(BackendKind.Managed);
                targets = [remote];
                break;
            default:
                what = "fallback off during a kill (Remote target)";
                values["Tandem:FallbackToManaged"] = "false";
                targets = [remote];
                killDuringHold = true;
                break;
        }

        foreach (var target in targets)
        {
            target.Reconfigure(values);
        }

        try
        {
            if (killDuringHold)
            {
                what += ": " + Kill(Victim(random));
            }

            await Task.Delay(hold);
        }
        finally
        {
            foreach (var target in targets)
            {
                target.RestoreDefaults(values.Keys);
            }
        }

        return $"{what} for {hold.TotalMilliseconds:F0} ms";
    }

    private string Kill(WorkerInfo victim)
    {
        Posix.Signal(victim.ProcessId!.Value, Posix.SigKill);
        return $"{victim.Name} (pid {victim.ProcessId}) killed";
    }

    /// <summary>A serving worker with a known pid, drawn from the seed (workers ordered by slot name).</summary>
    private WorkerInfo Victim(Random random)
    {
        var serving = _pool.Workers.Where(w => w.Status == WorkerStatus.Serving && w.ProcessId is not null).OrderBy(w => w.Name, StringComparer.Ordinal).ToArray();
        var pick = random.Next(settings.Workers);
        if (serving.Length == 0)
        {
            throw new InvalidOperationException("no serving worker to inject a fault into");
        }

        var victim = serving[pick % serving.Length];
        processes.Add(victim.ProcessId!.Value, victim.Name);
        return victim;
    }

    /// <summary>Until every slot serves again (a killed worker replaced, a stopped one re-admitted); a soak failure after 30 s.</summary>
    private async Task WaitUntilWholeAsync(FaultKind kind, string detail)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var workers = _pool.Workers;
            foreach (var worker in workers)
            {
                if (worker.ProcessId is { } pid)
                {
                    processes.Add(pid, worker.Name);
                }
            }

            if (workers.Count == settings.Workers && workers.All(w => w.Status == WorkerStatus.Serving))
            {
                return;
            }

            if (watch.Elapsed > RecoveryLimit)
            {
                ledger.Fail($"after {kind} ({detail}) the pool did not serve with {settings.Workers} workers within {RecoveryLimit.TotalSeconds} s: {string.Join(", ", workers.Select(w => $"{w.Name}={w.Status}"))}");
                return;
            }

            await Task.Delay(50);
        }
    }
}
