using BenchmarkDotNet.Running;
using Tandem.Benchmarks;

switch (args)
{
    case ["load", ..]:
        await LoadGenerator.RunAsync();
        return;
    case ["roundtrip", ..]:
        await RoundTrip.RunAsync(args);
        return;
    case ["transfer", ..]:
        await RemoteTransfer.RunAsync(args);
        return;
    case ["async", ..]:
        await AsyncCompletion.RunAsync(args);
        return;
    case ["pool", ..]:
        await PoolThroughput.RunAsync();
        return;
    case ["cputime", ..]:
        CpuTimeRunner.Run(args);
        return;
    case ["coldstart", ..]:
        await ColdStart.RunAsync(args);
        return;
    case ["inprocess-search", ..]:
        await InProcessSearch.RunAsync(args);
        return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
