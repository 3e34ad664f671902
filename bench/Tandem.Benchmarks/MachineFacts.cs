namespace Tandem.Benchmarks;

/// <summary>What every figure is printed next to: the CPU it ran on and how busy the machine was.</summary>
internal static class MachineFacts
{
    public static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";

    public static string LoadAverage() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}
