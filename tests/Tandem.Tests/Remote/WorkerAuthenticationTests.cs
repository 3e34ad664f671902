using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Remote;
using Tandem.Remote.Internal.Supervision;

namespace Tandem.Tests.Remote;

/// <summary>
/// Workers on TCP require the shared token: the client sends the one its
/// options give (or, for supervised workers, one of its own through their
/// environment), and a wrong one fails UNAUTHENTICATED naming the option.
/// </summary>
[Collection(WorkerSupervisionTests.Name)]
public sealed class WorkerAuthenticationTests
{
    private const string Token = "remote-test-token-0123456789abcdef";
    private static readonly byte[] Data = Encoding.UTF8.GetBytes("authenticated over TCP");

    [Fact]
    public async Task HashAsync_TcpEndpointWithTheRightToken_Works()
    {
        var (worker, address, sockets) = await StartTcpWorkerAsync();
        try
        {
            await using var host = new RemoteTestHost(o =>
            {
                o.Endpoints.Add(address);
                o.WorkerToken = Token;
            });
            Assert.Single(await host.StartAsync());

            var digest = await host.Hashing.HashAsync(Data);

            Assert.Equal(Blake3Reference(Data), digest);
        }
        finally
        {
            await worker.StopAsync(TimeSpan.FromSeconds(5));
            worker.Dispose();
            sockets.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("not-the-worker-token-000000000000")]
    [InlineData(null)]
    public async Task HashAsync_TcpEndpointWithAWrongOrNoToken_FailsUnauthenticatedNamingTheOption(string? token)
    {
        var (worker, address, sockets) = await StartTcpWorkerAsync();
        try
        {
            await using var host = new RemoteTestHost(o =>
            {
                o.Endpoints.Add(address);
                o.WorkerToken = token;
                o.StartTimeout = TimeSpan.FromSeconds(5);
            });
            await host.StartAsync();

            var error = await Assert.ThrowsAsync<TandemException>(async () => await host.Hashing.HashAsync(Data));

            Assert.Equal(TandemStatusCode.Unauthenticated, error.Code);
            Assert.Contains("RemoteOptions.WorkerToken", error.Message);
            Assert.DoesNotContain(Token, error.Message);
        }
        finally
        {
            await worker.StopAsync(TimeSpan.FromSeconds(5));
            worker.Dispose();
            sockets.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task StartAsync_SupervisedTcpWorker_GetsLimitsAsFlagsAndTheTokenOnlyThroughItsEnvironment()
    {
        await using var host = new RemoteTestHost(o =>
        {
            o.WorkerCount = 1;
            o.Transport = RemoteTransport.Tcp;
            o.WorkerToken = Token;
            o.WorkerMaxStates = 100;
            o.WorkerMaxStateBytes = 1L << 30;
            o.WorkerMaxRegions = 32;
            o.WorkerMaxConnections = 64;
            o.WorkerMaxStreamsPerConnection = 16;
            o.WorkerMaxOpenStreams = 8;
            o.WorkerStreamIdleTimeout = TimeSpan.FromSeconds(2.5);
        });
        var worker = Assert.Single(await host.StartAsync());
        var pid = Assert.IsType<int>(worker.ProcessId);

        var argv = (await File.ReadAllTextAsync($"/proc/{pid}/cmdline")).Split('\0');
        var environment = await File.ReadAllTextAsync($"/proc/{pid}/environ");

        foreach (var (flag, value) in new[]
        {
            ("--max-states", "100"), ("--max-state-bytes", "1073741824"), ("--max-regions", "32"), ("--max-connections", "64"),
            ("--max-streams-per-connection", "16"), ("--max-open-streams", "8"), ("--stream-idle-timeout", "2.5"),
        })
        {
            Assert.Equal(value, argv[Array.IndexOf(argv, flag) + 1]);
        }

        Assert.DoesNotContain(argv, a => a.Contains(Token, StringComparison.Ordinal));
        Assert.Contains($"TANDEM_WORKER_TOKEN={Token}\0", environment);
        Assert.Equal(Blake3Reference(Data), await host.Hashing.HashAsync(Data));
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void AddTandemRemote_BadTokenOptions_FailNamingTheOptionWithoutQuotingTheToken()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, Token);
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            Assert.Contains("chmod 600", Validate(o => o.WorkerTokenFile = file));
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.Null(Validate(o => o.WorkerTokenFile = file));

            Assert.Contains("exclusive", Validate(o =>
            {
                o.WorkerToken = Token;
                o.WorkerTokenFile = file;
            }));
            var tooShort = Validate(o => o.WorkerToken = "short-secret");
            Assert.Contains("Tandem:Remote:WorkerToken must be 16 to 1024", tooShort);
            Assert.DoesNotContain("short-secret", tooShort);
            Assert.Contains("Tandem:Remote:WorkerStreamIdleTimeout", Validate(o => o.WorkerStreamIdleTimeout = TimeSpan.Zero));
            Assert.Contains("Tandem:Remote:WorkerTokenFile", Validate(o => o.WorkerTokenFile = file + ".missing"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>The validation failure message, or null when the options are valid.</summary>
    private static string? Validate(Action<RemoteOptions> configure)
    {
        using var services = new ServiceCollection().AddTandemRemote(o =>
        {
            o.Endpoints.Add("http://127.0.0.1:1");
            configure(o);
        }).BuildServiceProvider();
        try
        {
            _ = services.GetRequiredService<IOptions<RemoteOptions>>().Value;
            return null;
        }
        catch (OptionsValidationException e)
        {
            return e.Message;
        }
    }

    /// <summary>An external worker on TCP (loopback) that requires <see cref="Token"/>.</summary>
    private static async Task<(WorkerProcess Worker, string Address, DirectoryInfo Sockets)> StartTcpWorkerAsync()
    {
        var sockets = Directory.CreateTempSubdirectory("tandem-test-auth-");
        var options = new RemoteOptions { Transport = RemoteTransport.Tcp };
        var worker = WorkerProcess.Start(WorkerBinary.Path, options, sockets.FullName, "tcp", null, token: Token);
        try
        {
            return (worker, await worker.WaitListeningAsync(TimeSpan.FromSeconds(30), CancellationToken.None), sockets);
        }
        catch
        {
            worker.Dispose();
            sockets.Delete(recursive: true);
            throw;
        }
    }

    private static byte[] Blake3Reference(byte[] data)
    {
        var digest = new byte[32];
        Tandem.Internal.Managed.ManagedBlake3.Hash(data, digest);
        return digest;
    }
}
