using Tandem.Remote;

namespace Tandem.Tests.Remote;

/// <summary>Tandem.Remote's public surface is kept small on purpose: a change here is a decision.</summary>
public sealed class RemotePublicApiTests
{
    [Fact]
    public void ExportedTypes_AreTheDocumentedOnes()
    {
        var exported = typeof(RemoteOptions).Assembly.GetExportedTypes().Select(t => t.FullName).Order(StringComparer.Ordinal);

        Assert.Equal(
            [
                "Microsoft.Extensions.DependencyInjection.RemoteServiceCollectionExtensions",
                "Tandem.Remote.IWorkerPoolAdmin",
                "Tandem.Remote.RemoteFastPath",
                "Tandem.Remote.RemoteOptions",
                "Tandem.Remote.RemoteTlsOptions",
                "Tandem.Remote.RemoteTransport",
                "Tandem.Remote.WorkerInfo",
                "Tandem.Remote.WorkerStatus",
            ],
            exported);
    }
}
