using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem.Contracts.V1;
using Tandem.Internal.Kernels;
using Tandem.Internal.Contracts;
using Tandem.Internal.Native;
using Tandem.Similarity;
using Tandem.Tests.Native;

namespace Tandem.Tests.Hosting;

public sealed class AddTandemTests
{
    [Fact]
    public void AddTandem_NonPositiveCallTimeout_FailsAtStartupNamingTheOption()
    {
        using var services = new ServiceCollection().AddTandem(o => o.CallTimeout = TimeSpan.Zero).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("CallTimeout", error.Message);
    }

    [Fact]
    public void AddTandem_MissingNativeLibraryPath_FailsAtStartupNamingTheOption()
    {
        using var services = new ServiceCollection().AddTandem(o => o.NativeLibraryPath = "/nonexistent/libtandem.so").BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("NativeLibraryPath", error.Message);
    }

    [Theory]
    [InlineData(0, 1, 1)]
    [InlineData(64, 0, 1)]
    [InlineData(64, 1, 0)]
    public void AddTandem_BatchingLimitBelowOne_FailsAtStartupNamingTheOption(int maxBatchRows, int queueLimit, int maxInFlight)
    {
        using var services = new ServiceCollection().AddTandem(o =>
        {
            o.Batching.MaxBatchRows = maxBatchRows;
            o.Batching.QueueLimit = queueLimit;
            o.Batching.MaxInFlight = maxInFlight;
        }).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Matches("MaxBatchRows|QueueLimit|MaxInFlight", error.Message);
    }

    [Fact]
    public void AddTandem_UndefinedBackend_FailsAtStartup()
    {
        using var services = new ServiceCollection().AddTandem(o => o.Backend = (BackendKind)9).BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains("Backend", error.Message);
    }

    [Fact]
    public async Task AddTandem_BackendChangedInConfiguration_NewCollectionsUseNewBackend()
    {
        var configuration = new ConfigurationManager();
        configuration["Tandem:Backend"] = "Managed";
        using var services = new ServiceCollection().AddTandem(configuration.GetSection("Tandem")).BuildServiceProvider();
        var sut = services.GetRequiredService<ISimilaritySearch>();

        var first = await sut.CreateCollectionAsync("a", new float[] { 1, 2 }, 2);
        configuration["Tandem:Backend"] = "Native";
        ((IConfigurationRoot)configuration).Reload();
        var second = await sut.CreateCollectionAsync("b", new float[] { 1, 2 }, 2);

        Assert.Equal(BackendKind.Managed, first.Backend);
        Assert.Equal(BackendKind.Native, second.Backend);
        Assert.Equal(BackendKind.Managed, (await sut.TopKAsync("a", new float[] { 1, 0 }, 1)).Backend);
    }

    [Fact]
    public void Similarity_NativeDescriptorDiffers_RefusedAndFallsBackToManagedLoggingOnce()
    {
        NativeLibraryFixture.EnsureLoaded();
        var changed = KernelContracts.TopK.Clone();
        changed.Version = 2;
        var logs = new ListLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var runtime = NativeRuntime.Load(null, [changed, KernelContracts.Noop], factory.CreateLogger("test"));
        var resolver = CreateResolver(new TandemOptions { Backend = BackendKind.Native }, runtime, factory);

        Assert.Equal(BackendKind.Managed, resolver.For(KernelContracts.SimilarityTopK).Kind);
        Assert.Equal(BackendKind.Managed, resolver.For(KernelContracts.SimilarityTopK).Kind);

        Assert.Null(runtime.Kernel(KernelContracts.SimilarityTopK, out var refusal));
        Assert.Equal(TandemStatusCode.FailedPrecondition, refusal!.Code);
        Assert.Contains("is version 1 in library 'tandem' but this build expects version 2", refusal.Message);
        Assert.Contains($"descriptor hash {ReferenceKernels.SimilarityTopk.Hash}, expected {KernelContracts.HashOf(changed)}", refusal.Message);
        Assert.Single(logs.Messages, m => m.Contains("falls back from Native to Managed"));
    }

    [Fact]
    public void Similarity_NativeDescriptorDiffersWithoutFallback_FailedPrecondition()
    {
        NativeLibraryFixture.EnsureLoaded();
        var changed = KernelContracts.TopK.Clone();
        changed.Params[0].Max = 100;
        var runtime = NativeRuntime.Load(null, [changed], NullLogger.Instance);
        var resolver = CreateResolver(new TandemOptions { Backend = BackendKind.Native, FallbackToManaged = false }, runtime, NullLoggerFactory.Instance);

        var error = Assert.Throws<TandemException>(() => resolver.For(KernelContracts.SimilarityTopK));

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Equal("similarity.topk", error.Kernel);
    }

    [Fact]
    public void Similarity_NativeDescriptorMatches_UsesNative()
    {
        var resolver = CreateResolver(new TandemOptions(), NativeLibraryFixture.EnsureLoaded(), NullLoggerFactory.Instance);

        Assert.Equal(BackendKind.Native, resolver.For(KernelContracts.SimilarityTopK).Kind);
    }

    private static KernelBackends CreateResolver(TandemOptions options, NativeRuntime runtime, ILoggerFactory factory) =>
        new(new StaticOptionsMonitor(options), factory, runtime);

    private sealed class StaticOptionsMonitor(TandemOptions value) : IOptionsMonitor<TandemOptions>
    {
        public TandemOptions CurrentValue => value;

        public TandemOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<TandemOptions, string?> listener) => null;
    }

    private sealed class ListLoggerProvider : ILoggerProvider, ILogger
    {
        public List<string> Messages { get; } = [];

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Messages)
            {
                Messages.Add(formatter(state, exception));
            }
        }

        public void Dispose()
        {
        }
    }
}
