using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Tandem.Remote;

namespace Tandem.Tests.Remote;

public sealed class RemoteOptionsTests
{
    [Fact]
    public void AddTandemRemote_MissingWorkerBinary_FailsWithTheOptionName()
    {
        using var services = new ServiceCollection().AddTandemRemote(o => o.WorkerPath = "/nonexistent/tandem-worker").BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RemoteOptions>>().Value);

        Assert.Contains("Tandem:Remote:WorkerPath", error.Message);
    }

    [Fact]
    public void AddTandemRemote_BadEndpointAndDeadline_FailsNamingEach()
    {
        using var services = new ServiceCollection().AddTandemRemote(o =>
        {
            o.Endpoints.Add("localhost:5000");
            o.CallDeadline = TimeSpan.Zero;
        }).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RemoteOptions>>().Value);

        Assert.Contains("Tandem:Remote:Endpoints", error.Message);
        Assert.Contains("Tandem:Remote:CallDeadline", error.Message);
    }

    [Fact]
    public void AddTandemRemote_FromConfiguration_BindsTheSection()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Tandem:Remote:Endpoints:0"] = "unix:/run/tandem/w0.sock",
            ["Tandem:Remote:SharedMemoryThresholdBytes"] = "1024",
            ["Tandem:Remote:CallDeadline"] = "00:00:02",
        }).Build();
        using var services = new ServiceCollection().AddTandemRemote(configuration.GetSection(RemoteOptions.SectionName)).BuildServiceProvider();

        var options = services.GetRequiredService<IOptions<RemoteOptions>>().Value;

        Assert.Equal("unix:/run/tandem/w0.sock", Assert.Single(options.Endpoints));
        Assert.Equal(1024, options.SharedMemoryThresholdBytes);
        Assert.Equal(TimeSpan.FromSeconds(2), options.CallDeadline);
    }

    [Fact]
    public void RemoteOptions_Defaults_AreDocumentedValues()
    {
        var options = new RemoteOptions();

        Assert.Equal(2, options.WorkerCount);
        Assert.Equal(64 * 1024, options.SharedMemoryThresholdBytes);
        Assert.Equal(RemoteTransport.UnixSocket, options.Transport);
        Assert.Null(options.CallDeadline);
        Assert.Empty(options.Endpoints);
    }
}
