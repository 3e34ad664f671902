using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Tandem.Benchmarks;

/// <summary>
/// <c>cputime CLASS [CALLS] [METHOD]</c>: runs each synchronous [Benchmark] method of
/// a BenchmarkDotNet class in a loop and reports the calling thread's CPU
/// time per call (CLOCK_THREAD_CPUTIME_ID), next to wall time and bytes
/// allocated per call; medians of 9 rounds. On a machine shared with other
/// jobs, CPU time leaves out the time this thread waited for a core, which
/// wall time (and BenchmarkDotNet) counts; cache and sibling-thread effects
/// remain, so quiet-machine BenchmarkDotNet runs stay the reference.
/// </summary>
internal static partial class CpuTimeRunner
{
    private const int Rounds = 9;
    private const int ClockThreadCpuTime = 3;

    public static void Run(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("usage: cputime CLASS [CALLS-PER-ROUND] [METHOD]");
            Environment.Exit(2);
        }

        var type = typeof(CpuTimeRunner).Assembly.GetTypes().SingleOrDefault(t => t.Name == args[1])
            ?? throw new ArgumentException($"no benchmark class named '{args[1]}'");
        var calls = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 1_000_000;
        var instance = Activator.CreateInstance(type)!;
        Invoke<GlobalSetupAttribute>(type, instance);
        try
        {
            Console.WriteLine($"cpu: {MachineFacts.CpuModel()}; load average at start: {MachineFacts.LoadAverage()}; {calls:N0} calls per round, median of {Rounds} rounds");
            Console.WriteLine($"{"method",-44} {"cpu ns/call",12} {"wall ns/call",13} {"bytes/call",11}");
            var only = args.Length > 3 ? args[3] : null;
            foreach (var method in type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null && m.GetParameters().Length == 0 && (only is null || m.Name == only)))
            {
                if (typeof(Task).IsAssignableFrom(method.ReturnType) || method.ReturnType.Name.StartsWith("ValueTask", StringComparison.Ordinal))
                {
                    continue;
                }

                var (cpu, wall, bytes) = Measure(method, instance, calls);
                Console.WriteLine($"{method.Name,-44} {cpu,12:F1} {wall,13:F1} {bytes,11:F1}");
            }

            Console.WriteLine($"load average at end: {MachineFacts.LoadAverage()}");
        }
        finally
        {
            Invoke<GlobalCleanupAttribute>(type, instance);
        }
    }

    private static void Invoke<TAttribute>(Type type, object instance)
        where TAttribute : Attribute
    {
        foreach (var method in type.GetMethods().Where(m => m.GetCustomAttribute<TAttribute>() is not null))
        {
            method.Invoke(instance, null);
        }
    }

    private static (double Cpu, double Wall, double Bytes) Measure(MethodInfo method, object instance, int calls)
    {
        var body = method.ReturnType == typeof(void)
            ? method.CreateDelegate<Action>(instance)
            : (Action)typeof(CpuTimeRunner).GetMethod(nameof(Discarding), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(method.ReturnType).Invoke(null, [method.CreateDelegate(typeof(Func<>).MakeGenericType(method.ReturnType), instance)])!;

        // Warm up long enough for tiered compilation to reach its optimised code.
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed < TimeSpan.FromSeconds(2))
        {
            Loop(body, 10_000);
        }

        var cpu = new double[Rounds];
        var wall = new double[Rounds];
        var bytes = new double[Rounds];
        for (var round = 0; round < Rounds; round++)
        {
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            var started = Stopwatch.GetTimestamp();
            var cpuStarted = ThreadCpuNanoseconds();
            Loop(body, calls);
            cpu[round] = (ThreadCpuNanoseconds() - cpuStarted) / (double)calls;
            wall[round] = Stopwatch.GetElapsedTime(started).TotalNanoseconds / calls;
            bytes[round] = (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)calls;
        }

        return (Median(cpu), Median(wall), Median(bytes));
    }

    private static void Loop(Action body, int calls)
    {
        for (var i = 0; i < calls; i++)
        {
            body();
        }
    }

    // Keeps a result alive without boxing it: a value type's result would
    // otherwise count 24 B per call that the benchmark itself never allocates.
    private static Action Discarding<T>(Func<T> body) => () => Sink<T>.Value = body();

    private static class Sink<T>
    {
        public static T? Value;
    }

    private static double Median(double[] values)
    {
        Array.Sort(values);
        return values[values.Length / 2];
    }

    private static unsafe long ThreadCpuNanoseconds()
    {
        Timespec now;
        if (clock_gettime(ClockThreadCpuTime, &now) != 0)
        {
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        }

        return (now.Seconds * 1_000_000_000L) + now.Nanoseconds;
    }

    [LibraryImport("libc", SetLastError = false)]
    private static unsafe partial int clock_gettime(int clock, Timespec* time);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
