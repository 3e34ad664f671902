using Microsoft.Extensions.Options;

namespace Tandem.Remote.Internal;

/// <summary>Checks what data annotations cannot express; failures name the option.</summary>
internal sealed class RemoteOptionsValidator : IValidateOptions<RemoteOptions>
{
    public const string WorkerPathVariable = "TANDEM_WORKER_PATH";

    public ValidateOptionsResult Validate(string? name, RemoteOptions options)
    {
        var failures = new List<string>();
        if (options.Endpoints.Count == 0)
        {
            var path = ResolveWorkerPath(options);
            if (path is null || !File.Exists(path))
            {
                failures.Add($"Tandem:Remote:WorkerPath '{path}' does not exist; set it, ${WorkerPathVariable}, or Endpoints.");
            }
        }

        foreach (var library in options.KernelLibraries)
        {
            if (string.IsNullOrWhiteSpace(library))
            {
                failures.Add("Tandem:Remote:KernelLibraries entries must be a path or a library name, got an empty one.");
            }
            else if (Tandem.Internal.Native.KernelLibraryLocator.Resolve(library, out var searched) is null)
            {
                failures.Add($"Tandem:Remote:KernelLibraries: {Tandem.Internal.Native.KernelLibraryLocator.NotFound(library, searched)}; give the path or name of a kernel library (.so) built with tandem-sdk.");
            }
            else if (options.Endpoints.Count > 0)
            {
                failures.Add("Tandem:Remote:KernelLibraries applies to supervised workers only; start external workers with --kernels instead.");
                break;
            }
        }

        foreach (var endpoint in options.Endpoints)
        {
            if (endpoint.StartsWith(Pool.DnsDiscovery.Scheme, StringComparison.Ordinal))
            {
                if (Pool.DnsDiscovery.Parse(endpoint) is null)
                {
                    failures.Add($"Tandem:Remote:Endpoints entry '{endpoint}' must be dns:///name:port, with a host name and a port from 1 to 65535.");
                }
            }
            else if (endpoint.StartsWith("http://", StringComparison.Ordinal) || endpoint.StartsWith(Transport.WorkerChannels.TlsScheme, StringComparison.Ordinal))
            {
                if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.IsDefaultPort || uri.AbsolutePath != "/" || uri.Host.Length == 0)
                {
                    failures.Add($"Tandem:Remote:Endpoints entry '{endpoint}' must be {uri?.Scheme ?? "http"}://host:port, with a host and an explicit port.");
                }
            }
            else if (!endpoint.StartsWith("unix:/", StringComparison.Ordinal))
            {
                failures.Add($"Tandem:Remote:Endpoints entries must be unix:/path, http://host:port, https://host:port or dns:///name:port, got '{endpoint}'.");
            }
        }

        ValidateTls(failures, options);

        if (!Directory.Exists(options.SharedMemoryDirectory))
        {
            failures.Add($"Tandem:Remote:SharedMemoryDirectory '{options.SharedMemoryDirectory}' does not exist.");
        }

        ValidateToken(failures, options);
        if (options.WorkerStreamIdleTimeout is { } idle && (idle <= TimeSpan.Zero || idle > TimeSpan.FromDays(1)))
        {
            failures.Add($"Tandem:Remote:WorkerStreamIdleTimeout must be more than 0 and at most 1 day, got {idle}.");
        }

        Positive(failures, nameof(options.EjectionProbeInterval), options.EjectionProbeInterval);
        Positive(failures, nameof(options.DnsRefreshInterval), options.DnsRefreshInterval);
        Positive(failures, nameof(options.RestartBackoff), options.RestartBackoff);
        Positive(failures, nameof(options.MaxRestartBackoff), options.MaxRestartBackoff);
        Positive(failures, nameof(options.StartTimeout), options.StartTimeout);
        Positive(failures, nameof(options.DrainGrace), options.DrainGrace);
        if (options.CallDeadline is { } deadline)
        {
            Positive(failures, nameof(options.CallDeadline), deadline);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>TLS files: a client key only with its certificate, and every file present and loadable when TLS is used.</summary>
    private static void ValidateTls(List<string> failures, RemoteOptions options)
    {
        var tls = options.Tls;
        if (tls is null)
        {
            failures.Add("Tandem:Remote:Tls must not be null.");
            return;
        }

        if (string.IsNullOrEmpty(tls.ClientCertificateFile) != string.IsNullOrEmpty(tls.ClientKeyFile))
        {
            failures.Add("Tandem:Remote:Tls:ClientCertificateFile and ClientKeyFile go together: give both (a client certificate and its key) or neither.");
            return;
        }

        if (tls.Enabled && !options.Endpoints.Any(e => e.StartsWith(Pool.DnsDiscovery.Scheme, StringComparison.Ordinal)))
        {
            failures.Add("Tandem:Remote:Tls:Enabled applies to dns:/// endpoints and none is configured; write TLS endpoints as https://host:port.");
        }

        if (!RemoteClient.NeedsTls(options))
        {
            return;
        }

        try
        {
            _ = new Transport.WorkerTls(tls, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        }
        catch (InvalidOperationException e)
        {
            failures.Add(e.Message);
        }
    }

    /// <summary>The worker binary: the option, else $TANDEM_WORKER_PATH, else tandem-worker next to the application.</summary>
    public static string? ResolveWorkerPath(RemoteOptions options)
    {
        if (options.WorkerPath is { Length: > 0 } configured)
        {
            return configured;
        }

        return Environment.GetEnvironmentVariable(WorkerPathVariable) is { Length: > 0 } fromEnvironment
            ? fromEnvironment
            : Path.Combine(AppContext.BaseDirectory, "tandem-worker");
    }

    /// <summary>Checks the token's source and form; messages never quote the token.</summary>
    private static void ValidateToken(List<string> failures, RemoteOptions options)
    {
        if (options.WorkerToken is not null && options.WorkerTokenFile is not null)
        {
            failures.Add("Tandem:Remote:WorkerToken and WorkerTokenFile are exclusive; set one.");
            return;
        }

        if (options.WorkerToken is { } token)
        {
            if (Transport.WorkerTokens.Problem(token) is { } problem)
            {
                failures.Add($"Tandem:Remote:WorkerToken {problem}.");
            }

            return;
        }

        if (options.WorkerTokenFile is not { } file)
        {
            return;
        }

        if (!File.Exists(file))
        {
            failures.Add($"Tandem:Remote:WorkerTokenFile '{file}' does not exist.");
            return;
        }

        // Workers run on Linux only; elsewhere there are no Unix permissions to check.
        var mode = OperatingSystem.IsWindows() ? UnixFileMode.None : File.GetUnixFileMode(file);
        const UnixFileMode OthersOrGroup = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & OthersOrGroup) != 0)
        {
            failures.Add($"Tandem:Remote:WorkerTokenFile '{file}' may be read by group or others; make it readable by its owner only (chmod 600).");
            return;
        }

        try
        {
            if (Transport.WorkerTokens.Problem(File.ReadAllText(file)) is { } problem)
            {
                failures.Add($"Tandem:Remote:WorkerTokenFile '{file}': the token {problem}.");
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failures.Add($"Tandem:Remote:WorkerTokenFile '{file}' cannot be read: {e.Message}");
        }
    }

    private static void Positive(List<string> failures, string option, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            failures.Add($"Tandem:Remote:{option} must be positive, got {value}.");
        }
    }
}
