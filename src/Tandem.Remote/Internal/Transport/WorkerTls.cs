using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Tandem.Remote.Internal.Transport;

/// <summary>
/// TLS to workers on other hosts (<see cref="RemoteTlsOptions"/>): the CAs
/// a worker's certificate must chain to, and the client certificate shown
/// when workers ask for one. The files are read at start and again when
/// they change (compared before each new connection, so a rotation needs no
/// restart); a bad new set is logged and the current one stays. Connections
/// already open keep their session.
/// </summary>
/// <remarks>
/// The handshake runs in the channel's connect callback: the HTTP layer
/// above speaks HTTP/2 with prior knowledge over the TLS stream, whose ALPN
/// has already agreed on <c>h2</c>. A failed handshake is an
/// <see cref="IOException"/> naming the worker and the reason (an untrusted
/// or expired certificate, a name the certificate does not carry, a worker
/// that answered in plaintext), which the call reports as UNAVAILABLE.
/// </remarks>
internal sealed class WorkerTls
{
    private readonly RemoteTlsOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private Material _current;
    private string[]? _refusedStamps;

    private sealed record Material(X509Certificate2Collection? Trust, SslStreamCertificateContext? Identity, string[] Stamps);

    /// <summary>Loads the files; throws <see cref="InvalidOperationException"/> naming the option and the problem.</summary>
    public WorkerTls(RemoteTlsOptions options, ILogger logger)
    {
        (_options, _logger) = (options, logger);
        _current = Load(options);
    }

    /// <summary>
    /// The refused handshake's message somewhere in <paramref name="failure"/>
    /// (a gRPC call's debug exception chain included), or null.
    /// </summary>
    public static string? RefusalIn(Exception? failure)
    {
        for (var e = failure; e is not null; e = e is Grpc.Core.RpcException rpc ? rpc.Status.DebugException ?? rpc.InnerException : e.InnerException)
        {
            if (e is IOException { Message: var message } && message.StartsWith(RefusalPrefix, StringComparison.Ordinal))
            {
                return message;
            }
        }

        return null;
    }

    /// <summary>How every message of a refused handshake starts.</summary>
    private const string RefusalPrefix = "TLS ";

    /// <summary>The name a worker's certificate must carry: <see cref="RemoteTlsOptions.ServerName"/>, else <paramref name="host"/>.</summary>
    public string ServerName(string host) => _options.ServerName is { Length: > 0 } name ? name : host;

    /// <summary>Opens TCP to <paramref name="endpoint"/> and completes a TLS handshake expecting <paramref name="serverName"/>.</summary>
    public async ValueTask<Stream> ConnectAsync(DnsEndPoint endpoint, string serverName, CancellationToken cancellationToken)
    {
        var material = Current();
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? tls = null;
        string? rejected = null;
        try
        {
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = serverName,
                ApplicationProtocols = [SslApplicationProtocol.Http2],
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                ClientCertificateContext = material.Identity,
                RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
                {
                    rejected = errors == SslPolicyErrors.None ? null : Describe(errors, chain, certificate, serverName);
                    return rejected is null;
                },
            };
            if (material.Trust is { } trust)
            {
                options.CertificateChainPolicy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    RevocationMode = X509RevocationMode.NoCheck,
                };
                options.CertificateChainPolicy.CustomTrustStore.AddRange(trust);
            }

            await tls.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            if (tls.NegotiatedApplicationProtocol != SslApplicationProtocol.Http2)
            {
                throw new IOException($"TLS to worker {serverName} at {endpoint.Host}:{endpoint.Port} did not agree on ALPN h2 (got '{tls.NegotiatedApplicationProtocol}'); is it a tandem-worker?");
            }

            return tls;
        }
        catch (Exception e) when (e is AuthenticationException or IOException && !cancellationToken.IsCancellationRequested)
        {
            Dispose(tls, socket);
            var reason = rejected ?? (e is AuthenticationException ? e.Message : $"{e.Message}; is the worker serving TLS (--tls-cert)? A plaintext worker is reached with http://");
            throw new IOException($"TLS handshake with worker {serverName} at {endpoint.Host}:{endpoint.Port} failed: {reason}", e);
        }
        catch
        {
            Dispose(tls, socket);
            throw;
        }
    }

    private static void Dispose(SslStream? tls, Socket socket)
    {
        if (tls is not null)
        {
            tls.Dispose();
        }
        else
        {
            socket.Dispose();
        }
    }

    /// <summary>Why a worker's certificate was rejected, in words an operator can act on.</summary>
    private static string Describe(SslPolicyErrors errors, X509Chain? chain, X509Certificate? certificate, string serverName)
    {
        var problems = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            problems.Add("the worker sent no certificate");
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            problems.Add($"its certificate does not name '{serverName}' (set Tandem:Remote:Tls:ServerName to the name it carries, or issue it for this name)");
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            var statuses = chain?.ChainStatus.Select(s => s.Status).Where(s => s != X509ChainStatusFlags.NoError).Distinct().ToArray() ?? [];
            var words = statuses.Select(s => s switch
            {
                X509ChainStatusFlags.NotTimeValid => certificate is X509Certificate2 c ? $"it is outside its validity ({c.NotBefore:u} to {c.NotAfter:u})" : "it is outside its validity",
                X509ChainStatusFlags.UntrustedRoot or X509ChainStatusFlags.PartialChain => "it is not issued by a CA in Tandem:Remote:Tls:CaCertificateFile",
                _ => s.ToString(),
            });
            problems.Add("its certificate chain is not valid: " + (statuses.Length == 0 ? "unknown chain error" : string.Join(", ", words)));
        }

        return string.Join("; ", problems);
    }

    /// <summary>The current material, after taking changed files.</summary>
    private Material Current()
    {
        var stamps = Stamps(_options);
        lock (_gate)
        {
            if (stamps is null || stamps.SequenceEqual(_current.Stamps) || (_refusedStamps is not null && stamps.SequenceEqual(_refusedStamps)))
            {
                // A file missing for a moment (being replaced) keeps the current set.
                return _current;
            }
        }

        try
        {
            var loaded = Load(_options);
            lock (_gate)
            {
                (_current, _refusedStamps) = (loaded, null);
            }

            RemoteLog.TlsReloaded(_logger, _options.CaCertificateFile ?? "(system)", _options.ClientCertificateFile ?? "(none)");
            return loaded;
        }
        catch (InvalidOperationException e)
        {
            lock (_gate)
            {
                _refusedStamps = stamps;
                RemoteLog.TlsReloadRefused(_logger, e.Message);
                return _current;
            }
        }
    }

    private static IEnumerable<string> Files(RemoteTlsOptions options) =>
        new[] { options.CaCertificateFile, options.ClientCertificateFile, options.ClientKeyFile }.Where(f => f is { Length: > 0 })!;

    /// <summary>Each file's length and write time; null when one is missing.</summary>
    private static string[]? Stamps(RemoteTlsOptions options)
    {
        var stamps = new List<string>();
        foreach (var file in Files(options))
        {
            var info = new FileInfo(file);
            if (!info.Exists)
            {
                return null;
            }

            stamps.Add($"{info.Length}:{info.LastWriteTimeUtc.Ticks}");
        }

        return [.. stamps];
    }

    private static Material Load(RemoteTlsOptions options)
    {
        var stamps = Stamps(options) ?? throw new InvalidOperationException(
            $"Tandem:Remote:Tls: {Files(options).First(f => !File.Exists(f))} does not exist.");
        X509Certificate2Collection? trust = null;
        if (options.CaCertificateFile is { Length: > 0 } ca)
        {
            trust = [];
            try
            {
                trust.ImportFromPemFile(ca);
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException)
            {
                throw new InvalidOperationException($"Tandem:Remote:Tls:CaCertificateFile {ca}: {e.Message}", e);
            }

            if (trust.Count == 0)
            {
                throw new InvalidOperationException($"Tandem:Remote:Tls:CaCertificateFile {ca} holds no CERTIFICATE block.");
            }
        }

        SslStreamCertificateContext? identity = null;
        if (options.ClientCertificateFile is { Length: > 0 } certFile && options.ClientKeyFile is { Length: > 0 } keyFile)
        {
            try
            {
                var leaf = X509Certificate2.CreateFromPemFile(certFile, keyFile);
                var chain = new X509Certificate2Collection();
                chain.ImportFromPemFile(certFile);
                var intermediates = new X509Certificate2Collection();
                foreach (var c in chain.Skip(1))
                {
                    intermediates.Add(c);
                }

                if (DateTime.UtcNow > leaf.NotAfter.ToUniversalTime())
                {
                    throw new InvalidOperationException($"Tandem:Remote:Tls:ClientCertificateFile {certFile} expired at {leaf.NotAfter.ToUniversalTime():u}.");
                }

                identity = SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or ArgumentException)
            {
                throw new InvalidOperationException($"Tandem:Remote:Tls:ClientCertificateFile {certFile} with ClientKeyFile {keyFile}: {e.Message}", e);
            }
        }

        return new Material(trust, identity, stamps);
    }
}
