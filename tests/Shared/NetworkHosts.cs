using System.Diagnostics;

namespace Tandem.Tests.Shared;

/// <summary>
/// "Hosts" on one machine: network namespaces, each joined to the test's own
/// namespace by a veth pair on its own /30 (10.X.i.1 here, 10.X.i.2 there),
/// so a worker inside one is reached only over its link — which the test can
/// take down and bring up. Hosts reach each other through the test's namespace
/// (a route to the subnet, forwarding on these links only).
/// Needs root (as CI runs). Linked into the tests and
/// the benchmarks (the cross-host round trip). Disposing kills every
/// process started in them and deletes the namespaces (and so the links).
/// </summary>
internal sealed class NetworkHosts : IAsyncDisposable
{
    private static int _next;
    private readonly string _prefix;
    private readonly int _subnet;
    private readonly List<string> _namespaces = [];
    private readonly List<Process> _processes = [];

    public NetworkHosts()
    {
        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException("the multi-host tests create network namespaces (ip netns) and need root, as CI has");
        }

        var instance = Interlocked.Increment(ref _next);
        var id = (Environment.ProcessId % 1000 * 10) + (instance % 10);
        _prefix = $"td{id}";
        // Its own 10.X.0.0/16 per instance, so two sets alive at once never share addresses.
        _subnet = 200 + ((Environment.ProcessId + instance) % 50);
    }

    /// <summary>The address of host <paramref name="index"/> (from 1), as the test's namespace reaches it.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Process, System.Collections.Concurrent.ConcurrentQueue<string>> _errors = new();

    public string Address(int index) => $"10.{_subnet}.{index}.2";

    public string Namespace(int index) => $"{_prefix}h{index}";

    private string HostLink(int index) => $"{_prefix}v{index}";

    /// <summary>Creates host <paramref name="index"/> with its link up.</summary>
    public async Task AddAsync(int index)
    {
        var ns = Namespace(index);
        await IpAsync("netns", "add", ns);
        _namespaces.Add(ns);
        var (here, there) = (HostLink(index), $"{_prefix}p{index}");
        await IpAsync("link", "add", here, "type", "veth", "peer", "name", there);
        await IpAsync("link", "set", there, "netns", ns);
        await IpAsync("addr", "add", $"10.{_subnet}.{index}.1/30", "dev", here);
        await IpAsync("link", "set", here, "up");
        await IpAsync("netns", "exec", ns, "ip", "addr", "add", $"{Address(index)}/30", "dev", there);
        await IpAsync("netns", "exec", ns, "ip", "link", "set", there, "up");
        await IpAsync("netns", "exec", ns, "ip", "link", "set", "lo", "up");
        // Hosts reach each other through this namespace: a route to the
        // test's /16 via this end, and forwarding on this link only (the
        // per-interface switch, not the machine's net.ipv4.ip_forward; it
        // goes with the link).
        await IpAsync("netns", "exec", ns, "ip", "route", "add", $"10.{_subnet}.0.0/16", "via", $"10.{_subnet}.{index}.1");
        await File.WriteAllTextAsync($"/proc/sys/net/ipv4/conf/{here}/forwarding", "1");
    }

    /// <summary>Takes host <paramref name="index"/>'s link down (a partition: packets are dropped, connections stall) or up again.</summary>
    public Task SetLinkAsync(int index, bool up) => IpAsync("link", "set", HostLink(index), up ? "up" : "down");

    /// <summary>Starts <paramref name="file"/> inside host <paramref name="index"/>; killed on dispose.</summary>
    public Process Start(int index, string file, IEnumerable<string> args, IDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "netns", "exec", Namespace(index), file }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info)!;
        _processes.Add(process);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        _errors[process] = errors;
        process.ErrorDataReceived += (_, line) =>
        {
            if (line.Data is { } text && errors.Count < 200)
            {
                errors.Enqueue(text);
            }
        };
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>What <paramref name="process"/> wrote on stderr so far (its first 200 lines), for failure messages.</summary>
    public string Errors(Process process) =>
        _errors.TryGetValue(process, out var lines) ? string.Join('\n', lines) : "";

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }

            process.Dispose();
        }

        foreach (var ns in _namespaces)
        {
            await IpAsync("netns", "del", ns);
        }
    }

    private static async Task IpAsync(params string[] args)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', args)} failed ({process.ExitCode}): {error.Trim()}");
        }
    }
}
