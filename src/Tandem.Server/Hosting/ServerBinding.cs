using System.Net;

namespace Tandem.Server.Hosting;

/// <summary>
/// Where the service listens, reduced to the one question security defaults
/// depend on: is every listener loopback (or a Unix socket)? Then only local
/// processes can reach it, read-only endpoints stay open, and the Host header
/// must name the loopback host (against DNS rebinding).
/// </summary>
internal sealed class ServerBinding
{
    /// <summary>The Host names a loopback-only server answers to (any port).</summary>
    public const string LoopbackHosts = "localhost;127.0.0.1;[::1]";

    private ServerBinding(string urls, bool loopbackOnly)
    {
        Urls = urls;
        IsLoopbackOnly = loopbackOnly;
    }

    /// <summary>The listen URLs as configured, ';'-separated.</summary>
    public string Urls { get; }

    /// <summary>Whether no listener accepts connections from another host.</summary>
    public bool IsLoopbackOnly { get; }

    public static ServerBinding Of(string urls)
    {
        var loopbackOnly = true;
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            loopbackOnly &= IsLoopback(url);
        }

        return new ServerBinding(urls, loopbackOnly);
    }

    private static bool IsLoopback(string url)
    {
        var address = BindingAddress.Parse(url);
        if (address.IsUnixPipe || address.IsNamedPipe)
        {
            return true;
        }

        // "*", "+", "0.0.0.0", "[::]" and host names all listen beyond this machine.
        var host = address.Host.Trim('[', ']');
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }
}
