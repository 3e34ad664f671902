using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Remote;
using Tandem.Tests.Shared;
using Tandem.Tests.Similarity;
using static Tandem.Tests.Remote.MultiHost.MultiHostTests;

namespace Tandem.Tests.Remote.MultiHost;

/// <summary>
/// TLS to workers on other hosts (network namespaces over veth, real worker
/// processes): calls over TLS with client certificates, found by DNS and
/// checked against the DNS name; certificates rotated on both sides under
/// load fail no call and new connections get the new ones; an untrusted,
/// expired or wrongly named worker certificate, a missing client
/// certificate, and plaintext on either side are refused with the reason.
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TlsTests
{
    private const int Dim = 16;
    private const string Name = "workers.test";
    private static readonly float[] Vectors = TestData.Integers(2000, Dim, seed: 33);

    [Fact]
    public async Task WorkersFoundByDns_ServeOverMutualTls_AndCertificatesRotatedUnderLoadFailNoCall()
    {
        await using var hosts = new NetworkHosts();
        using var token = new TokenFile();
        using var certs = new TestCertificates();
        var ca = certs.Ca("ca");
        var served = new List<(string Cert, string Key)>();
        for (var i = 1; i <= 2; i++)
        {
            await hosts.AddAsync(i);
            served.Add(certs.Leaf("ca", $"worker-{i}", [Name]));
            await StartWorkerAsync(hosts, i, token.Path, "--tls-cert", served[^1].Cert, "--tls-key", served[^1].Key, "--tls-client-ca", ca);
        }

        var identity = certs.Leaf("ca", "client", ["client"], client: true);
        var answers = new InjectedDnsAnswers(Name, IPAddress.Parse(hosts.Address(1)), IPAddress.Parse(hosts.Address(2)));
        await using var host = MutualTlsClient(ca, identity, answers);
        await host.StartAsync();
        await host.Eventually(() => host.Admin.Workers.Count(w => w.Status == WorkerStatus.Serving) == 2, "both TLS workers serve");
        Assert.All(host.Admin.Workers, w => Assert.StartsWith("https://", w.Address, StringComparison.Ordinal));
        await host.Search.CreateCollectionAsync("c", Vectors, Dim);
        var queries = Enumerable.Range(0, 64).Select(i => TestData.Integers(1, Dim, seed: 500 + i)).ToArray();
        var expected = await Task.WhenAll(queries.Select(q => host.Search.TopKAsync("c", q, 4).AsTask()));

        // Load from 8 callers (at most 3,000 calls) while both workers' and
        // the client's certificates are replaced by new ones from the same CA.
        using var stop = new CancellationTokenSource();
        var load = new SearchLoad(host, "c", queries, expected, k: 4, callers: 8, maxCalls: 3000, stop.Token);
        var rotated = new List<string>();
        for (var i = 1; i <= 2; i++)
        {
            var next = certs.Leaf("ca", $"worker-{i}-next", [Name]);
            TestCertificates.Rotate(next, served[i - 1]);
            rotated.Add(TestCertificates.Thumbprint(next.Cert));
        }

        TestCertificates.Rotate(certs.Leaf("ca", "client-next", ["client"], client: true), identity);
        // New connections meet the new certificates (a probe of our own, with the rotated client certificate).
        for (var i = 1; i <= 2; i++)
        {
            Assert.Equal(rotated[i - 1], await ServedThumbprintAsync(hosts.Address(i), ca, identity));
        }

        // A second client connects only after the rotation, with the new files.
        await using var later = MutualTlsClient(ca, identity, answers);
        await later.StartAsync();
        await later.Eventually(() => later.Admin.Workers.Count(w => w.Status == WorkerStatus.Serving) == 2, "a client after the rotation reaches both");
        await stop.CancelAsync();
        Assert.Empty(await load.Failures);
        Assert.True(load.Issued > 8, "the load ran");
        Assert.Equal(expected[0].Ids, (await host.Search.TopKAsync("c", queries[0], 4)).Ids);
    }

    /// <summary>A client of the workers <see cref="Name"/> resolves to, over TLS trusting <paramref name="ca"/>, showing <paramref name="identity"/>.</summary>
    private static RemoteTestHost MutualTlsClient(string ca, (string Cert, string Key) identity, InjectedDnsAnswers answers) => Client(o =>
    {
        o.Endpoints.Add($"dns:///{Name}:{Port}");
        o.Tls.Enabled = true;
        o.Tls.CaCertificateFile = ca;
        o.Tls.ClientCertificateFile = identity.Cert;
        o.Tls.ClientKeyFile = identity.Key;
    }, answers);

    [Fact]
    public async Task AWorkerCertificateThatIsUntrustedExpiredOrForAnotherName_IsRefusedWithTheReason()
    {
        await using var hosts = new NetworkHosts();
        using var token = new TokenFile();
        using var certs = new TestCertificates();
        var ca = certs.Ca("ca");
        certs.Ca("other-ca");
        await hosts.AddAsync(1);
        await hosts.AddAsync(2);
        await hosts.AddAsync(3);
        var untrusted = certs.Leaf("other-ca", "untrusted", [hosts.Address(1)]);
        await StartWorkerAsync(hosts, 1, token.Path, "--tls-cert", untrusted.Cert, "--tls-key", untrusted.Key);
        // Valid when the worker starts, expired by the time the client connects.
        var expiring = certs.Leaf("ca", "expiring", [hosts.Address(2)], notAfter: DateTimeOffset.UtcNow.AddSeconds(3));
        await StartWorkerAsync(hosts, 2, token.Path, "--tls-cert", expiring.Cert, "--tls-key", expiring.Key);
        var named = certs.Leaf("ca", "named", ["elsewhere.test"]);
        await StartWorkerAsync(hosts, 3, token.Path, "--tls-cert", named.Cert, "--tls-key", named.Key);
        await Task.Delay(TimeSpan.FromSeconds(4));

        foreach (var (index, reason) in new[] { (1, "not issued by a CA in Tandem:Remote:Tls:CaCertificateFile"), (2, "outside its validity"), (3, "does not name") })
        {
            await using var host = Client(o =>
            {
                o.Endpoints.Add($"https://{hosts.Address(index)}:{Port}");
                o.Tls.CaCertificateFile = ca;
            });
            await host.StartAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => host.Hashing.HashAsync(new byte[16]).AsTask());
            Assert.Equal(TandemStatusCode.Unavailable, error.Code);
            Assert.Contains("TLS handshake", error.Message, StringComparison.Ordinal);
            Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AMissingClientCertificate_AndPlaintextOnEitherSide_AreRefusedClearly()
    {
        await using var hosts = new NetworkHosts();
        using var token = new TokenFile();
        using var certs = new TestCertificates();
        var ca = certs.Ca("ca");
        await hosts.AddAsync(1);
        await hosts.AddAsync(2);
        var served = certs.Leaf("ca", "worker", [hosts.Address(1)]);
        await StartWorkerAsync(hosts, 1, token.Path, "--tls-cert", served.Cert, "--tls-key", served.Key, "--tls-client-ca", ca);
        await StartWorkerAsync(hosts, 2, token.Path);

        // No client certificate for a worker that requires one.
        await using (var anonymous = Client(o =>
        {
            o.Endpoints.Add($"https://{hosts.Address(1)}:{Port}");
            o.Tls.CaCertificateFile = ca;
        }))
        {
            await anonymous.StartAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => anonymous.Hashing.HashAsync(new byte[16]).AsTask());
            Assert.Equal(TandemStatusCode.Unavailable, error.Code);
            Assert.DoesNotContain(anonymous.Admin.Workers, w => w.Status == WorkerStatus.Serving);
        }

        // TLS to a plaintext worker: the handshake fails and says what to check.
        await using (var tlsToPlain = Client(o =>
        {
            o.Endpoints.Add($"https://{hosts.Address(2)}:{Port}");
            o.Tls.CaCertificateFile = ca;
        }))
        {
            await tlsToPlain.StartAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => tlsToPlain.Hashing.HashAsync(new byte[16]).AsTask());
            Assert.Equal(TandemStatusCode.Unavailable, error.Code);
            Assert.Contains("TLS handshake", error.Message, StringComparison.Ordinal);
        }

        // Plaintext to a TLS worker: closed unanswered, never served.
        await using (var plainToTls = Client(o => o.Endpoints.Add($"http://{hosts.Address(1)}:{Port}")))
        {
            await plainToTls.StartAsync();
            var error = await Assert.ThrowsAsync<TandemException>(() => plainToTls.Hashing.HashAsync(new byte[16]).AsTask());
            Assert.Equal(TandemStatusCode.Unavailable, error.Code);
        }

        // With the client certificate the same worker serves.
        var identity = certs.Leaf("ca", "client", ["client"], client: true);
        await using var good = Client(o =>
        {
            o.Endpoints.Add($"https://{hosts.Address(1)}:{Port}");
            o.Tls.CaCertificateFile = ca;
            o.Tls.ClientCertificateFile = identity.Cert;
            o.Tls.ClientKeyFile = identity.Key;
        });
        await good.StartAsync();
        Assert.Equal(32, (await good.Hashing.HashAsync(new byte[16])).Length);
    }

    [Fact]
    public void BadTlsOptions_AreRefusedAtStartNamingTheOption()
    {
        using var certs = new TestCertificates();
        var ca = certs.Ca("ca");
        var empty = Path.Combine(certs.Directory, "empty.pem");
        File.WriteAllText(empty, "");
        var leaf = certs.Leaf("ca", "client", ["client"], client: true);
        var expired = certs.Leaf("ca", "old", ["client"], client: true, notBefore: DateTimeOffset.UtcNow.AddDays(-2), notAfter: DateTimeOffset.UtcNow.AddDays(-1));
        var cases = new (Action<RemoteOptions> Configure, string Expected)[]
        {
            (o => { o.Endpoints.Add("https://10.1.2.3:50051"); o.Tls.ClientKeyFile = leaf.Key; }, "go together"),
            (o => { o.Endpoints.Add("http://10.1.2.3:50051"); o.Tls.Enabled = true; }, "applies to dns:/// endpoints"),
            (o => { o.Endpoints.Add("https://10.1.2.3:50051"); o.Tls.CaCertificateFile = Path.Combine(certs.Directory, "missing.crt"); }, "missing.crt does not exist"),
            (o => { o.Endpoints.Add("https://10.1.2.3:50051"); o.Tls.CaCertificateFile = empty; }, "holds no CERTIFICATE"),
            (o => { o.Endpoints.Add("https://10.1.2.3:50051"); o.Tls.ClientCertificateFile = leaf.Cert; o.Tls.ClientKeyFile = empty; }, "ClientCertificateFile"),
            (o => { o.Endpoints.Add("https://10.1.2.3:50051"); o.Tls.ClientCertificateFile = expired.Cert; o.Tls.ClientKeyFile = expired.Key; }, "expired"),
            (o => o.Endpoints.Add("https://10.1.2.3"), "https://host:port"),
            (o => o.Endpoints.Add("https://10.1.2.3:50051/path"), "https://host:port"),
            (o => o.Endpoints.Add("tls://10.1.2.3:50051"), "https://host:port"),
        };
        foreach (var (configure, expected) in cases)
        {
            using var services = new ServiceCollection()
                .AddTandemRemote(configure).BuildServiceProvider();
            var error = Assert.Throws<OptionsValidationException>(
                () => services.GetRequiredService<IOptions<RemoteOptions>>().Value);
            Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        }

        // A valid set passes.
        using var good = new ServiceCollection().AddTandemRemote(o =>
        {
            o.Endpoints.Add("https://10.1.2.3:50051");
            o.Tls.CaCertificateFile = ca;
            o.Tls.ClientCertificateFile = leaf.Cert;
            o.Tls.ClientKeyFile = leaf.Key;
        }).BuildServiceProvider();
        Assert.Equal(ca, good.GetRequiredService<IOptions<RemoteOptions>>().Value.Tls.CaCertificateFile);
    }

    /// <summary>The thumbprint of the certificate a fresh TLS connection to the worker at <paramref name="address"/> is shown.</summary>
    private static async Task<string> ServedThumbprintAsync(string address, string caFile, (string Cert, string Key) identity)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Parse(address), Port);
        using var client = X509Certificate2.CreateFromPemFile(identity.Cert, identity.Key);
        var trust = new X509Certificate2Collection();
        trust.ImportFromPemFile(caFile);
        await using var tls = new SslStream(tcp.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = Name,
            ApplicationProtocols = [SslApplicationProtocol.Http2],
            ClientCertificates = [client],
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck },
        };
        options.CertificateChainPolicy.CustomTrustStore.AddRange(trust);
        await tls.AuthenticateAsClientAsync(options);
        return new X509Certificate2(tls.RemoteCertificate!).GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256);
    }
}
