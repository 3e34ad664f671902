using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Remote;

namespace Tandem.Benchmarks;

/// <summary>
/// A 256 MiB input tensor to a worker, inline in the gRPC message versus
/// through a registered shared-memory region, in one run. The kernel is
/// <c>diagnostics.noop</c>, so the time is the transfer alone: for shared
/// memory, the copy into the region plus a small request; inline, the copy
/// into the message, HTTP/2 framing through the socket and the worker's
/// decoding. Prints the median and the ratio.
/// Usage: dotnet run -c Release --project bench/Tandem.Benchmarks -- transfer [MiB] [runs]
/// </summary>
internal static class RemoteTransfer
{
    public static async Task RunAsync(string[] args)
    {
        var mebibytes = args.Length > 1 && int.TryParse(args[1], out var m) ? m : 256;
        var runs = args.Length > 2 && int.TryParse(args[2], out var r) ? r : 9;
        var data = new byte[mebibytes << 20];
        Random.Shared.NextBytes(data);
        Console.WriteLine($"transfer: diagnostics.noop with a {mebibytes} MiB u8 input to one worker over UDS, {runs} runs after 2 warm-up, {Environment.ProcessorCount} cores");

        var inline = await MeasureAsync(data, runs, shared: false);
        var shared = await MeasureAsync(data, runs, shared: true);
        Console.WriteLine($"{"path",-28} {"median ms",10} {"min ms",8} {"GiB/s",7}");
        Print("inline (one gRPC message)", inline, data.Length);
        Print("shared memory region", shared, data.Length);
        Console.WriteLine($"shared memory is {inline.Median / shared.Median:F1}x faster (target ≥ 5x)");
    }

    private static void Print(string name, (double Median, double Min) ms, long bytes) =>
        Console.WriteLine($"{name,-28} {ms.Median,10:F1} {ms.Min,8:F1} {bytes / (ms.Median / 1000) / (1L << 30),7:F2}");

    private static async Task<(double Median, double Min)> MeasureAsync(byte[] data, int runs, bool shared)
    {
        await using var services = RemoteBench.Services(RemoteTransport.UnixSocket, workers: 1, o =>
        {
            o.SharedMemoryThresholdBytes = shared ? 64 * 1024 : int.MaxValue;
            // An inline tensor must fit in one message.
            o.WorkerMaxMessageBytes = data.Length + (1L << 20);
        });
        await RemoteBench.StartAsync(services);
        var backends = services.GetRequiredService<KernelBackends>();
        var times = new double[runs];
        for (var i = -2; i < runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using (var call = new KernelCall(KernelContracts.Noop))
            {
                call.Input<byte>(data, data.Length).Input<byte>(ReadOnlyMemory<byte>.Empty, 0);
                await backends.InvokeAsync(backends.For(KernelContracts.DiagnosticsNoop), call, CancellationToken.None);
            }

            if (i >= 0)
            {
                times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
        }

        Array.Sort(times);
        return (times[runs / 2], times[0]);
    }
}
