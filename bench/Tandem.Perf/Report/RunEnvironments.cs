using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Tandem.Perf.Report;

/// <summary>Reads the environment block: CPU model and flags, the SIMD path the Rust kernels take, commit, .NET, load average.</summary>
internal static class RunEnvironments
{
    public static RunEnvironment Capture(string command)
    {
        var cpuinfo = ReadOrEmpty("/proc/cpuinfo");
        var (isa, source) = Isa(CpuFlags(cpuinfo), Environment.GetEnvironmentVariable("TANDEM_ISA"));
        return new RunEnvironment
        {
            Cpu = CpuModel(cpuinfo),
            Cores = Environment.ProcessorCount,
            Isa = isa,
            IsaSource = source,
            DotnetVector512 = Vector512.IsHardwareAccelerated,
            Dotnet = RuntimeInformation.FrameworkDescription,
            Os = RuntimeInformation.OSDescription,
            Commit = Commit(),
            DateUtc = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
            Command = command,
            LoadAverageAtStart = LoadAverage(),
        };
    }

    /// <summary>The 1-minute load average, or null off Linux.</summary>
    public static double? LoadAverage()
    {
        var text = ReadOrEmpty("/proc/loadavg").Split(' ');
        return double.TryParse(text[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var load) ? load : null;
    }

    /// <summary>"model name" of the first processor.</summary>
    internal static string CpuModel(string cpuinfo)
    {
        foreach (var line in cpuinfo.Split('\n'))
        {
            if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
            {
                return line[(colon + 1)..].Trim();
            }
        }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    internal static HashSet<string> CpuFlags(string cpuinfo)
    {
        foreach (var line in cpuinfo.Split('\n'))
        {
            if (line.StartsWith("flags", StringComparison.Ordinal) && line.IndexOf(':', StringComparison.Ordinal) is var colon and > 0)
            {
                return [.. line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)];
            }
        }

        return [];
    }

    /// <summary>
    /// The path native/sdk/src/simd.rs selects: TANDEM_ISA when the CPU can
    /// run it, else the best of avx512 (avx512f + dq + vl), avx2 (+ fma),
    /// portable — the same CPU flags the Rust side checks.
    /// </summary>
    internal static (string Isa, string Source) Isa(IReadOnlySet<string> flags, string? forced)
    {
        bool Runs(string isa) => isa switch
        {
            "avx512" => flags.Contains("avx512f") && flags.Contains("avx512dq") && flags.Contains("avx512vl"),
            "avx2" => flags.Contains("avx2") && flags.Contains("fma"),
            _ => true,
        };

        var best = new[] { "avx512", "avx2", "portable" }.First(Runs);
        var value = forced?.Trim() ?? "";
        if (value is "" or "auto")
        {
            return (best, "detected");
        }

        return value is "avx512" or "avx2" or "portable" && Runs(value)
            ? (value, "TANDEM_ISA")
            : (best, $"detected (TANDEM_ISA={value} not honoured)");
    }

    private static string Commit()
    {
        try
        {
            var root = FindRepository();
            if (root is null)
            {
                return "unknown";
            }

            var head = Git(root, "rev-parse --short HEAD");
            var dirty = Git(root, "status --porcelain --untracked-files=no");
            return head is null ? "unknown" : dirty is { Length: > 0 } ? head + " (uncommitted changes)" : head;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    private static string? FindRepository()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (Directory.Exists(Path.Combine(dir.FullName, ".git")) || File.Exists(Path.Combine(dir.FullName, ".git")))
                {
                    return dir.FullName;
                }
            }
        }

        return null;
    }

    private static string? Git(string root, string arguments)
    {
        using var git = Process.Start(new ProcessStartInfo("git", $"-C \"{root}\" {arguments}") { RedirectStandardOutput = true, RedirectStandardError = true });
        if (git is null)
        {
            return null;
        }

        var output = git.StandardOutput.ReadToEnd().Trim();
        git.WaitForExit();
        return git.ExitCode == 0 ? output : null;
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
