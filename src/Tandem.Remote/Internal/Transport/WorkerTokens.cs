using System.Security.Cryptography;

namespace Tandem.Remote.Internal.Transport;

/// <summary>
/// The shared token workers on TCP require (<c>authorization: Bearer</c>):
/// from <see cref="RemoteOptions.WorkerToken"/> or <see cref="RemoteOptions.WorkerTokenFile"/>,
/// or generated for supervised TCP workers. The value never reaches a log
/// or an exception message.
/// </summary>
internal static class WorkerTokens
{
    /// <summary>The environment variable a worker reads its token from.</summary>
    public const string EnvironmentVariable = "TANDEM_WORKER_TOKEN";

    public const int MinLength = 16;
    public const int MaxLength = 1024;

    /// <summary>The configured token (trimmed), or null when none is configured.</summary>
    public static string? Configured(RemoteOptions options) =>
        options.WorkerToken is { } token ? token.Trim()
        : options.WorkerTokenFile is { Length: > 0 } file ? File.ReadAllText(file).Trim()
        : null;

    /// <summary>What supervised workers are started with: the configured token, else a fresh one when they listen on TCP.</summary>
    public static string? ForSupervised(RemoteOptions options) =>
        Configured(options) ?? (options.Transport == RemoteTransport.Tcp ? Generate() : null);

    /// <summary>256 random bits, hex-encoded.</summary>
    public static string Generate() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Why <paramref name="token"/> cannot be a token (without quoting it), or null.</summary>
    public static string? Problem(string token)
    {
        var trimmed = token.Trim();
        if (trimmed.Length is < MinLength or > MaxLength)
        {
            return $"must be {MinLength} to {MaxLength} characters long, got {trimmed.Length}";
        }

        foreach (var c in trimmed)
        {
            if (c is < '!' or > '~')
            {
                return "must be visible ASCII characters only (no spaces or control characters)";
            }
        }

        return null;
    }
}

/// <summary>Adds the token to every request on a worker's channel.</summary>
internal sealed class WorkerTokenHandler(string token) : DelegatingHandler
{
    private readonly string _header = "Bearer " + token;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Headers.TryAddWithoutValidation("authorization", _header);
        return base.SendAsync(request, cancellationToken);
    }
}
