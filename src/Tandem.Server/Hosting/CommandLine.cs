namespace Tandem.Server.Hosting;

/// <summary>
/// The server's command-line shorthands, rewritten into configuration keys
/// (any <c>--Section:Key=value</c> works too): <c>--demo</c>,
/// <c>--workers N</c>, <c>--port N</c>, <c>--state-repository DIR</c>, <c>--help</c>.
/// </summary>
internal static class CommandLine
{
    public const string Usage = """
        Tandem.Server: the reference HTTP service and live dashboard.

        Usage: Tandem.Server [--demo] [--workers N] [--port N] [--state-repository DIR] [--Section:Key=value ...]

          --demo          load the demo collection and run the built-in load generator
          --workers N     run kernels on N supervised tandem-worker processes (Remote)
                          instead of the in-process native library
          --port N        listen on http://127.0.0.1:N (default 5080)
          --state-repository DIR
                          keep collections durably in DIR (the state repository):
                          a restart, or another replica sharing DIR, finds them again
          --help          print this and exit

        Every option in docs/operations.md can be given as --Server:Limits:MaxJsonBytes=...
        or as an environment variable (Server__Limits__MaxJsonBytes=...).
        """;

    /// <summary>The arguments with shorthands expanded; null when the caller asked for help.</summary>
    public static string[]? Expand(string[] args)
    {
        var expanded = new List<string>(args.Length);
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--help" or "-h":
                    return null;
                case "--demo":
                    expanded.Add("--Server:Demo:Enabled=true");
                    break;
                case "--workers" when i + 1 < args.Length:
                    expanded.Add($"--Server:Workers={args[++i]}");
                    break;
                case "--state-repository" when i + 1 < args.Length:
                    expanded.Add($"--Tandem:StateRepository={args[++i]}");
                    break;
                case "--port" when i + 1 < args.Length:
                    expanded.Add($"--Server:Urls=http://127.0.0.1:{args[++i]}");
                    break;
                default:
                    expanded.Add(args[i]);
                    break;
            }
        }

        return [.. expanded];
    }
}
