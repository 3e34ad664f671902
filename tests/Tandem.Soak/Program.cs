using System.Diagnostics;

namespace Tandem.Soak;

/// <summary>
/// The fault soak (docs/reliability.md, "Fault soak"): calls the three
/// reference kernels through the Remote pool and the in-process Native
/// backend while a seeded chaos driver injects faults, books every call,
/// samples RSS, checks nothing is left behind and writes the report. Exit
/// code 0 only when every call ended exactly once with Managed's result or a
/// documented error, memory stayed flat and nothing was left.
/// </summary>
internal static class Program
{
    public static readonly string[] TargetNames = ["remote", "native"];

    public static async Task<int> Main(string[] args)
    {
        SoakSettings settings;
        try
        {
            settings = SoakSettings.Parse(args);
        }
        catch (SoakUsageException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        var workerPath = settings.WorkerPath ?? Tandem.Tests.Shared.RepositoryPaths.WorkerPath;
        if (!File.Exists(workerPath))
        {
            Console.Error.WriteLine($"tandem-worker not found at {workerPath}: build it (make build) or pass --worker PATH");
            return 2;
        }

        // Everything this run creates lives under its own directories, so the
        // leftover check can tell its files from those of other programs.
        var run = Directory.CreateTempSubdirectory($"tandem-soak-{Environment.ProcessId}-");
        var temporary = run.CreateSubdirectory("tmp");
        var libraries = run.CreateSubdirectory("libraries");
        var sharedMemory = Directory.CreateDirectory($"/dev/shm/tandem-soak-{Environment.ProcessId}");
        Environment.SetEnvironmentVariable("TMPDIR", temporary.FullName);
        try
        {
            return await RunAsync(settings, args, workerPath, temporary.FullName, libraries.FullName, sharedMemory.FullName);
        }
        finally
        {
            run.Delete(recursive: true);
            sharedMemory.Delete(recursive: true);
        }
    }

    private static async Task<int> RunAsync(SoakSettings settings, string[] args, string workerPath, string temporary, string libraries, string sharedMemory)
    {
        var command = args.Length == 0 ? "tandem-soak" : $"tandem-soak {string.Join(' ', args)}";
        Console.WriteLine($"soak: {command}; computing the Managed reference results (seed {settings.Seed})");
        var workload = await Workload.CreateAsync(settings.Seed);
        var ledger = new Ledger(settings.Calls);
        var processes = new ProcessRegistry();
        var remote = Target.Remote(settings, workerPath, sharedMemory);
        var native = Target.InProcess(settings);
        Target[] targets = [remote, native];
        var startedAt = DateTimeOffset.UtcNow;
        long runStarted, runEnded, taken = 0;
        IReadOnlyList<Fault> faults;
        RssSampler rss;
        try
        {
            await remote.Pool!.StartAsync();
            foreach (var target in targets)
            {
                await target.Search.CreateCollectionAsync(Workload.Collection, workload.Vectors, Workload.Dimension);
            }

            // Two copies of the library native calls run on, to hot-swap between.
            var current = native.Native.Current.Path ?? throw new InvalidOperationException("the native library has no path");
            string[] copies = [Path.Combine(libraries, "libtandem-a.so"), Path.Combine(libraries, "libtandem-b.so")];
            foreach (var copy in copies)
            {
                File.Copy(current, copy);
            }

            // And one cut short, which a hot swap must refuse.
            var broken = Path.Combine(libraries, "libtandem-truncated.so");
            using (var source = File.OpenRead(current))
            using (var target = File.Create(broken))
            {
                var head = new byte[64 * 1024];
                source.ReadExactly(head);
                target.Write(head);
            }

            using var stopChaos = new CancellationTokenSource();
            using var stopSampling = new CancellationTokenSource();
            rss = new RssSampler(settings, remote, processes);
            var chaos = new ChaosDriver(settings, remote, native, copies, broken, processes, ledger);
            var runner = new CallRunner(settings, workload, targets, ledger);
            runStarted = Stopwatch.GetTimestamp();
            var sampling = rss.RunAsync(stopSampling.Token);
            var chaosRun = Task.Run(() => chaos.RunAsync(stopChaos.Token));

            long next = -1;
            var interrupted = false;
            Console.CancelKeyPress += (_, e) =>
            {
                // Ctrl-C ends the run like its time limit: calls stop, faults are undone, everything is cleaned up.
                e.Cancel = true;
                Volatile.Write(ref interrupted, true);
            };
            bool More(long id)
            {
                if (id >= settings.Calls || Volatile.Read(ref interrupted))
                {
                    return false;
                }

                if (settings.Seconds <= 0)
                {
                    return true;
                }

                var elapsed = Stopwatch.GetElapsedTime(runStarted).TotalSeconds;
                return elapsed < settings.Seconds || (chaos.CompletedCycles == 0 && elapsed < (2 * settings.Seconds) + 10);
            }

            var loops = Enumerable.Range(0, settings.Concurrency).Select(_ => Task.Run(async () =>
            {
                for (var id = Interlocked.Increment(ref next); More(id); id = Interlocked.Increment(ref next))
                {
                    await runner.RunAsync(id);
                }
            })).ToArray();

            var deadline = TimeSpan.FromSeconds(settings.CallTimeoutSeconds + settings.GraceSeconds);
            var overdue = new HashSet<long>();
            var all = Task.WhenAll(loops);
            var lastProgress = Stopwatch.GetTimestamp();
            while (!all.IsCompleted)
            {
                await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(1)));
                foreach (var (id, age) in ledger.Overdue(deadline))
                {
                    if (overdue.Add(id))
                    {
                        ledger.Fail($"call {id} ({ledger.Describe(id)}) still in flight after {age.TotalSeconds:F1} s (deadline {settings.CallTimeoutSeconds} s + grace {settings.GraceSeconds} s)");
                    }
                }

                if (overdue.Count >= settings.Concurrency)
                {
                    ledger.Fail("every call loop is stuck on an overdue call: stopping");
                    break;
                }

                if (Stopwatch.GetElapsedTime(lastProgress) > TimeSpan.FromSeconds(10))
                {
                    lastProgress = Stopwatch.GetTimestamp();
                    Console.WriteLine($"soak: {Math.Min(Interlocked.Read(ref next), settings.Calls):N0} calls, {chaos.Faults.Count} faults, {ledger.FailureCount} failures, {Stopwatch.GetElapsedTime(runStarted).TotalSeconds:F0} s");
                }
            }

            runEnded = Stopwatch.GetTimestamp();
            // Ids were taken in order but a loop may stop on one while another starts a later one: count the started.
            taken = Math.Min(Interlocked.Read(ref next) + 1, settings.Calls);
            stopChaos.Cancel();
            await chaosRun;
            if (chaos.CompletedCycles == 0)
            {
                ledger.Fail($"the run ended ({taken:N0} calls) before every fault kind was injected once: raise --calls");
            }

            stopSampling.Cancel();
            await sampling;
            faults = chaos.Faults;
        }
        finally
        {
            await DisposeAsync(remote, ledger);
            await DisposeAsync(native, ledger);
        }

        var issued = ledger.Close(taken);
        foreach (var growth in rss.Growth())
        {
            ledger.Fail(growth);
        }

        var leftovers = Leftovers.Find(processes.All, temporary, sharedMemory);
        foreach (var leftover in leftovers)
        {
            ledger.Fail(leftover);
        }

        var report = SoakReport.Build(settings, command, startedAt, runStarted, runEnded, taken, issued, ledger, faults, rss, leftovers);
        report.Write(settings.Output);
        Console.WriteLine(report.Markdown());
        Console.WriteLine($"soak: report written to {Path.GetFullPath(settings.Output)}/report.json and report.md");
        return report.Passed ? 0 : 1;
    }

    private static async Task DisposeAsync(Target target, Ledger ledger)
    {
        var disposing = target.DisposeAsync().AsTask();
        if (await Task.WhenAny(disposing, Task.Delay(TimeSpan.FromSeconds(60))) != disposing)
        {
            ledger.Fail($"disposing the {target.Name} target took more than 60 s");
        }
    }
}
