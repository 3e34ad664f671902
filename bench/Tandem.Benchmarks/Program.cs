using BenchmarkDotNet.Running;
using Tandem.Benchmarks;

if (args is ["load", ..])
{
    await LoadGenerator.RunAsync();
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
