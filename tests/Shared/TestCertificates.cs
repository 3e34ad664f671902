using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tandem.Tests.Shared;

/// <summary>
/// Certificates for TLS tests and benchmarks, made in process
/// (<see cref="CertificateRequest"/>, ECDSA P-256) and written as PEM files
/// in a private temporary directory that goes with the instance.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class TestCertificates : IDisposable
{
    private readonly Dictionary<string, (X509Certificate2 Cert, ECDsa Key)> _cas = [];
    private long _serial = 1;

    public TestCertificates()
    {
        Directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"tandem-tls-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    /// <summary>A CA named <paramref name="name"/>; returns its certificate file.</summary>
    public string Ca(string name)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-2), DateTimeOffset.UtcNow.AddDays(60));
        _cas[name] = (cert, key);
        var path = File(name + ".crt");
        System.IO.File.WriteAllText(path, cert.ExportCertificatePem());
        return path;
    }

    /// <summary>
    /// A leaf issued by CA <paramref name="ca"/> for <paramref name="names"/>
    /// (DNS names or IP addresses), for a server or a client, valid until
    /// <paramref name="notAfter"/> (default 30 days); returns its certificate and key files.
    /// </summary>
    public (string Cert, string Key) Leaf(string ca, string name, string[] names, bool client = false, DateTimeOffset? notAfter = null, DateTimeOffset? notBefore = null)
    {
        var (caCert, _) = _cas[ca];
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var n in names)
        {
            if (IPAddress.TryParse(n, out var ip))
            {
                san.AddIpAddress(ip);
            }
            else
            {
                san.AddDnsName(n);
            }
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(client ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(caCert, true, false));
        var serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial));
        using var cert = request.Create(caCert, notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(30), serial);
        var (certPath, keyPath) = (File(name + ".crt"), File(name + ".key"));
        System.IO.File.WriteAllText(certPath, cert.ExportCertificatePem());
        System.IO.File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        System.IO.File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (certPath, keyPath);
    }

    /// <summary>Replaces <paramref name="target"/>'s files with <paramref name="source"/>'s, key first, each by an atomic rename (as a rotation does).</summary>
    public static void Rotate((string Cert, string Key) source, (string Cert, string Key) target)
    {
        foreach (var (from, to) in new[] { (source.Key, target.Key), (source.Cert, target.Cert) })
        {
            var staged = to + ".staged";
            System.IO.File.Copy(from, staged, overwrite: true);
            System.IO.File.Move(staged, to, overwrite: true);
        }
    }

    /// <summary>The SHA-256 thumbprint of the first certificate in <paramref name="certFile"/>.</summary>
    public static string Thumbprint(string certFile) =>
        X509Certificate2.CreateFromPem(System.IO.File.ReadAllText(certFile)).GetCertHashString(HashAlgorithmName.SHA256);

    private string File(string name) => System.IO.Path.Combine(Directory, name);

    public void Dispose()
    {
        foreach (var (cert, key) in _cas.Values)
        {
            cert.Dispose();
            key.Dispose();
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
