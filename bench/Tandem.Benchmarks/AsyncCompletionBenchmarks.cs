using System.Diagnostics;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;

namespace Tandem.Benchmarks;

/// <summary>
/// Submit → completion of <c>diagnostics.noop</c> (two 64-byte u8 tensors,
/// pinned once) awaited in a loop: at concurrency 1 (latency) and with 64
/// calls in flight (amortised cost per call), for each way a completion can
/// reach its awaiter: the callback completing on the Rust thread with the
/// continuation on the thread pool (the path before the completion queue),
/// and <see cref="NativeCompletionQueue"/> with its drainer parking at once
/// or spinning first. Times are per call (OperationsPerInvoke).
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- --filter '*AsyncCompletion*'
/// </summary>
[MemoryDiagnoser]
[ThreadingDiagnoser]
[MedianColumn]
public class AsyncCompletionBenchmarks
{
    private const int Calls = 4096;

    private AsyncCompletionWorkload _workload = null!;

    [Params(AsyncCompletionPath.Callback, AsyncCompletionPath.QueueNoSpin, AsyncCompletionPath.QueueSpin)]
    public AsyncCompletionPath Path { get; set; }

    [GlobalSetup]
    public void Setup() => _workload = new AsyncCompletionWorkload(Path);

    [GlobalCleanup]
    public void Cleanup() => _workload.Dispose();

    [Benchmark(OperationsPerInvoke = Calls)]
    public Task Concurrency1() => _workload.RunAsync(Calls, 1);

    [Benchmark(OperationsPerInvoke = Calls)]
    public Task InFlight64() => _workload.RunAsync(Calls, 64);
}

/// <summary>How a benchmark's completions reach their awaiters.</summary>
public enum AsyncCompletionPath
{
    /// <summary>Completed on the Rust thread, continuation on the thread pool (before the queue).</summary>
    Callback,

    /// <summary>Through a completion queue whose drainer parks as soon as the queue is empty.</summary>
    QueueNoSpin,

    /// <summary>Through a completion queue whose drainer spins <see cref="NativeCompletionQueue.DefaultSpin"/> before parking (the default).</summary>
    QueueSpin,
}

/// <summary>Loops of awaited submissions of <c>diagnostics.noop</c> through one completion path.</summary>
internal sealed class AsyncCompletionWorkload : IDisposable
{
    private const int TensorBytes = 64;

    private readonly NativeKernel _noop;
    private readonly NativeCompletionQueue? _queue;
    private readonly NativeTensor[] _inputs;

    public unsafe AsyncCompletionWorkload(AsyncCompletionPath path)
    {
        var runtime = NativeRuntime.Load(null, KernelContracts.All, NullLogger.Instance);
        if (runtime.LoadError is { } loadError)
        {
            throw loadError;
        }

        _noop = runtime.Kernel(KernelContracts.DiagnosticsNoop, out var refusal) ?? throw refusal!;
        _queue = path switch
        {
            AsyncCompletionPath.QueueNoSpin => new NativeCompletionQueue(NativeCompletionQueue.DefaultCapacity, TimeSpan.Zero),
            AsyncCompletionPath.QueueSpin => new NativeCompletionQueue(NativeCompletionQueue.DefaultCapacity, NativeCompletionQueue.DefaultSpin),
            _ => null,
        };
        var a = GC.AllocateArray<byte>(TensorBytes, pinned: true);
        var b = GC.AllocateArray<byte>(TensorBytes, pinned: true);
        _inputs = GC.AllocateArray<NativeTensor>(2, pinned: true);
        _inputs[0] = NativeTensor.Create((byte*)Unsafe.AsPointer(ref a[0]), TensorBytes, NativeDType.U8, TensorBytes);
        _inputs[1] = NativeTensor.Create((byte*)Unsafe.AsPointer(ref b[0]), TensorBytes, NativeDType.U8, TensorBytes);
        Info = runtime.Info;
    }

    public NativeRuntimeInfo Info { get; }

    /// <summary><paramref name="calls"/> awaited submissions spread over <paramref name="concurrency"/> loops.</summary>
    public Task RunAsync(int calls, int concurrency)
    {
        if (concurrency == 1)
        {
            return LoopAsync(calls);
        }

        var loops = new Task[concurrency];
        for (var i = 0; i < concurrency; i++)
        {
            loops[i] = LoopAsync(calls / concurrency + (i < calls % concurrency ? 1 : 0));
        }

        return Task.WhenAll(loops);
    }

    public void Dispose() => _queue?.Dispose();

    private async Task LoopAsync(int calls)
    {
        for (var i = 0; i < calls; i++)
        {
            await Submit().ConfigureAwait(false);
        }
    }

    private ValueTask Submit()
    {
        var context = default(NativeCallContext);
        return _noop.Submit(0, _inputs, [], [], ref context, _queue);
    }
}

/// <summary>
/// The same loops as <see cref="AsyncCompletionBenchmarks"/> with the CPU they
/// cost: rounds interleave the paths, and each row reports the median over
/// rounds of wall time per call and of process CPU time per call (every
/// thread: the caller, Rust's pool, the drainer, the thread pool; spinning
/// included), plus thread-pool work items per call.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- async [calls] [rounds] [path] [in flight]
/// (path and in flight pick one row, e.g. to count its syscalls and context
/// switches under <c>perf stat</c>).
/// </summary>
internal static class AsyncCompletion
{
    public static async Task RunAsync(string[] args)
    {
        var calls = args.Length > 1 && int.TryParse(args[1], out var n) ? n : 50_000;
        var rounds = args.Length > 2 && int.TryParse(args[2], out var r) ? r : 9;
        var paths = args.Length > 3 ? [Enum.Parse<AsyncCompletionPath>(args[3], ignoreCase: true)] : Enum.GetValues<AsyncCompletionPath>();
        var workloads = paths.Select(p => new AsyncCompletionWorkload(p)).ToArray();
        int[] concurrencies = args.Length > 4 ? [int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture)] : [1, 64];
        Console.WriteLine($"async: diagnostics.noop, two 64 B tensors, {calls:N0} calls per measurement, {rounds} rounds (medians), {Environment.ProcessorCount} cores, {workloads[0].Info.ComputeThreads} compute threads, {NativeRuntime.IsaName(workloads[0].Info.Isa)} kernels");
        Console.WriteLine($"cpu: {CpuModel()}; load average at start: {LoadAverage()}");
        var wall = new List<double>[paths.Length, concurrencies.Length];
        var cpu = new List<double>[paths.Length, concurrencies.Length];
        var items = new List<double>[paths.Length, concurrencies.Length];
        for (var p = 0; p < paths.Length; p++)
        {
            for (var c = 0; c < concurrencies.Length; c++)
            {
                (wall[p, c], cpu[p, c], items[p, c]) = ([], [], []);
                // Long enough for tiered compilation to reach its final code (a smoke run skips that).
                await workloads[p].RunAsync(calls >= 10_000 ? Math.Max(calls, 200_000) : calls, concurrencies[c]);
            }
        }

        using var process = Process.GetCurrentProcess();
        for (var round = 0; round < rounds; round++)
        {
            for (var p = 0; p < paths.Length; p++)
            {
                for (var c = 0; c < concurrencies.Length; c++)
                {
                    process.Refresh();
                    var cpuBefore = process.TotalProcessorTime;
                    var itemsBefore = ThreadPool.CompletedWorkItemCount;
                    var started = Stopwatch.GetTimestamp();
                    await workloads[p].RunAsync(calls, concurrencies[c]);
                    var elapsed = Stopwatch.GetElapsedTime(started);
                    process.Refresh();
                    wall[p, c].Add(elapsed.TotalNanoseconds / calls);
                    cpu[p, c].Add((process.TotalProcessorTime - cpuBefore).TotalNanoseconds / calls);
                    items[p, c].Add((double)(ThreadPool.CompletedWorkItemCount - itemsBefore) / calls);
                }
            }
        }

        // The anchor: one round trip between two threads that wait the way the
        // drainer and Rust's pool do (spin, yielding the core), with no work and no
        // queue; a call at concurrency 1 is such a round trip plus the work.
        var anchorWall = new List<double>();
        var anchorCpu = new List<double>();
        // (Not when one row is picked: its syscall counts would include the anchor's.)
        for (var round = 0; round < (args.Length > 3 ? 0 : rounds); round++)
        {
            process.Refresh();
            var cpuBefore = process.TotalProcessorTime;
            var elapsed = PingPong(calls);
            process.Refresh();
            anchorWall.Add(elapsed.TotalNanoseconds / calls);
            anchorCpu.Add((process.TotalProcessorTime - cpuBefore).TotalNanoseconds / calls);
        }

        Console.WriteLine($"{"path",-14} {"in flight",9} {"ns/call",9} {"CPU ns/call",12} {"pool items/call",16}");
        if (anchorWall.Count > 0)
        {
            Console.WriteLine($"{"anchor",-14} {1,9} {Median(anchorWall),9:F0} {Median(anchorCpu),12:F0} {0,16:F2}   (thread ping-pong, spin-yield, no work)");
        }
        for (var p = 0; p < paths.Length; p++)
        {
            for (var c = 0; c < concurrencies.Length; c++)
            {
                Console.WriteLine($"{paths[p],-14} {concurrencies[c],9} {Median(wall[p, c]),9:F0} {Median(cpu[p, c]),12:F0} {Median(items[p, c]),16:F2}");
            }
        }

        Console.WriteLine($"load average at end: {LoadAverage()}");
        foreach (var workload in workloads)
        {
            workload.Dispose();
        }
    }

    /// <summary><paramref name="trips"/> round trips between this thread and another, both spinning with <see cref="SpinWait"/> (never sleeping).</summary>
    private static TimeSpan PingPong(int trips)
    {
        var turn = 0;
        var partner = new Thread(() =>
        {
            for (var i = 0; i < trips; i++)
            {
                var spinner = default(SpinWait);
                while (Volatile.Read(ref turn) != 1)
                {
                    spinner.SpinOnce(sleep1Threshold: -1);
                }

                Volatile.Write(ref turn, 0);
            }
        })
        {
            IsBackground = true,
        };
        partner.Start();
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < trips; i++)
        {
            Volatile.Write(ref turn, 1);
            var spinner = default(SpinWait);
            while (Volatile.Read(ref turn) != 0)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        partner.Join();
        return elapsed;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    private static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

    private static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
