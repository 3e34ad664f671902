using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Tandem.Contracts.V1;
using Tandem.Hashing;
using Tandem.Internal.Contracts;
using Tandem.Internal.Kernels;
using Tandem.Internal.Native;
using Tandem.Native;
using Tandem.Pricing;
using Tandem.Similarity;
using Tandem.Tests.Similarity;

namespace Tandem.Tests.Native;

/// <summary>
/// Hot swap of libtandem.so in process: calls keep flowing and never fail,
/// results stay identical, states move to the new library, and a library
/// that would be refused is never switched to.
/// </summary>
public sealed class HotSwapTests
{
    private const int Dimension = 32;
    private const int K = 5;
    private static readonly string LibraryPath = Path.Combine(AppContext.BaseDirectory, NativeRuntime.LibraryFileName);
    private static readonly EuropeanOption[] Options = [new(100, 105, 0.02, 0.25, 0.5, OptionKind.Call), new(50, 45, 0.01, 0.4, 2, OptionKind.Put)];
    private static readonly MonteCarloSettings Settings = new() { Paths = 20_000, Seed = 9 };

    [Fact]
    public async Task HotSwapAsync_RepeatedUnderConcurrentLoad_NoCallFailsAndResultsStayIdentical()
    {
        using var services = CreateSut();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var host = services.GetRequiredService<KernelBackends>().NativeHost;
        var search = services.GetRequiredService<ISimilaritySearch>();
        var pricing = services.GetRequiredService<IOptionPricing>();
        var hashing = services.GetRequiredService<IBlake3Hashing>();
        await search.CreateCollectionAsync("docs", TestData.Integers(4096, Dimension, seed: 3), Dimension);
        // 16 queries over 4096 rows is above the sync threshold: submitted to the pool.
        var queries = TestData.Integers(16, Dimension, seed: 5);
        var expectedTopK = await search.TopKAsync("docs", queries, K);
        var expectedPrices = await pricing.PriceEuropeanAsync(Options, Settings);
        var payload = TestData.Integers(4096, 4, seed: 7).Select(v => (byte)v).ToArray();
        var expectedDigest = hashing.Hash(payload);
        Assert.Equal(BackendKind.Native, expectedTopK.Backend);
        Assert.Equal(BackendKind.Native, expectedPrices.Backend);
        var stream = hashing.OpenStream();
        Assert.Equal(BackendKind.Native, stream.Backend);
        stream.Append(payload.AsSpan(0, 1000));

        var failures = new ConcurrentQueue<Exception>();
        using var progress = new SemaphoreSlim(0);
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var topK = await search.TopKAsync("docs", queries, K);
                    Assert.Equal(expectedTopK.Ids, topK.Ids);
                    Assert.Equal(expectedTopK.Scores, topK.Scores);
                    var prices = await pricing.PriceEuropeanAsync(Options, Settings);
                    Assert.Equal(expectedPrices.Prices, prices.Prices);
                    Assert.Equal(expectedDigest, hashing.Hash(payload));
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }

                progress.Release();
            }
        })).ToArray();

        for (var generation = 2; generation <= 4; generation++)
        {
            // Calls run before, during and after every switch.
            await WaitForCalls(progress, 8);
            var info = await admin.HotSwapAsync(LibraryPath);
            Assert.Equal(generation, info.Generation);
        }

        await WaitForCalls(progress, 8);
        await stop.CancelAsync();
        await Task.WhenAll(workers);

        Assert.Empty(failures);
        Assert.Equal(4, admin.Current.Generation);
        Assert.Equal(LibraryPath, admin.Current.Path);
        var after = await search.TopKAsync("docs", queries, K);
        Assert.Equal(expectedTopK.Ids, after.Ids);
        Assert.Equal(expectedTopK.Scores, after.Scores);
        // Generations 2 and 3 drained; the stream opened on generation 1 holds it until it is freed.
        Assert.Equal(1, host.Draining);
        stream.Append(payload.AsSpan(1000));
        Assert.Equal(expectedDigest, stream.Finalize());
        stream.Dispose();
        Assert.Equal(0, host.Draining);
        Assert.Empty(Directory.GetFiles(host.CopyDirectory!));
    }

    [Fact]
    public async Task HotSwapAsync_ConcurrentRequests_RunOneAtATime()
    {
        using var services = CreateSut();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("docs", TestData.Integers(256, Dimension, seed: 3), Dimension);
        var queries = TestData.Integers(2, Dimension, seed: 5);
        var expected = await search.TopKAsync("docs", queries, K);

        var swaps = Enumerable.Range(0, 3).Select(_ => admin.HotSwapAsync(LibraryPath).AsTask()).ToArray();
        // Collections created while swaps run are rebuilt by the swaps that follow, never missed.
        var created = Enumerable.Range(0, 3).Select(i => search.CreateCollectionAsync($"new-{i}", TestData.Integers(256, Dimension, seed: 3), Dimension).AsTask()).ToArray();
        var results = await Task.WhenAll(swaps);
        await Task.WhenAll(created);

        Assert.Equal([2L, 3L, 4L], results.Select(s => s.Generation).Order());
        Assert.Equal(4, admin.Current.Generation);
        Assert.Equal(expected.Ids, (await search.TopKAsync("docs", queries, K)).Ids);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(expected.Ids, (await search.TopKAsync($"new-{i}", queries, K)).Ids);
        }
    }

    [Fact]
    public async Task HotSwapAsync_MissingFile_FailedPreconditionAndOldLibraryServes()
    {
        using var services = CreateSut();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var expected = await SearchOnce(services);

        var error = await Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.so")).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("no file", error.Message);
        await AssertStillServes(services, expected);
    }

    [Fact]
    public async Task HotSwapAsync_FileIsNotALibrary_FailedPreconditionAndOldLibraryServes()
    {
        using var services = CreateSut();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var expected = await SearchOnce(services);
        var file = Path.Combine(Path.GetTempPath(), $"not-a-library-{Guid.NewGuid():N}.so");
        await File.WriteAllTextAsync(file, "this is not an ELF file");
        try
        {
            var error = await Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(file).AsTask());

            Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
            Assert.Contains("could not be loaded", error.Message);
            await AssertStillServes(services, expected);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task HotSwapAsync_TruncatedLibrary_FailedPreconditionAndOldLibraryServes()
    {
        // Found by the fault soak: dlopen mapped the cut file and the process died of SIGBUS.
        using var services = CreateSut();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var expected = await SearchOnce(services);
        var file = Path.Combine(Path.GetTempPath(), $"truncated-{Guid.NewGuid():N}.so");
        var bytes = await File.ReadAllBytesAsync(LibraryPath);
        await File.WriteAllBytesAsync(file, bytes.AsMemory(0, 64 * 1024).ToArray());
        try
        {
            var error = await Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(file).AsTask());

            Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
            Assert.Contains("is truncated", error.Message);
            Assert.Equal(1, admin.Current.Generation);
            await AssertStillServes(services, expected);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task HotSwapAsync_Disabled_FailedPreconditionNamingTheOption()
    {
        using var services = CreateSut(hotSwap: false);
        var admin = services.GetRequiredService<INativeLibraryAdmin>();

        var error = await Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(LibraryPath).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("NativeHotSwap", error.Message);
        Assert.Equal(1, admin.Current.Generation);
    }

    [Fact]
    public async Task HotSwapAsync_LibraryOfAnotherAbiMajor_FailedPreconditionAndOldLibraryServes()
    {
        // The seam: this host expects ABI 2.x of new libraries, so the real build (1.x) plays the wrong one.
        using var host = CreateHost(abiMajor: 2);
        var digest = Hash(host);

        var error = await Assert.ThrowsAsync<TandemException>(() => host.HotSwapAsync(LibraryPath).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("needs ABI 2.x", error.Message);
        Assert.Equal(1, host.Current.Generation);
        Assert.Equal(digest, Hash(host));
    }

    [Fact]
    public async Task HotSwapAsync_StartedWithoutALibrary_SwapsToAWorkingOne()
    {
        using var host = CreateHost(initialPath: Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.so"));
        Assert.NotNull(host.Current.Error);

        var info = await host.HotSwapAsync(LibraryPath);

        Assert.Equal(2, info.Generation);
        Assert.Null(info.Error);
        Assert.Equal(KernelContracts.AbiMajor, (uint)info.AbiMajor);
        Assert.Equal(32, Hash(host).Length);
    }

    [Fact]
    public async Task HotSwapAsync_KernelDescriptorDiffers_FailedPreconditionNamingTheKernel()
    {
        var changed = KernelContracts.TopK.Clone();
        changed.Version = 2;
        using var host = CreateHost(contracts: [.. KernelContracts.All.Where(c => c.Name != changed.Name), changed]);
        var digest = Hash(host);

        var error = await Assert.ThrowsAsync<TandemException>(() => host.HotSwapAsync(LibraryPath).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("kernel 'similarity.topk' would be refused", error.Message);
        Assert.Equal(1, host.Current.Generation);
        Assert.Equal(digest, Hash(host));
    }

    [Fact]
    public async Task HotSwapAsync_StateCreatedWhileDisabled_FailedPreconditionAndStateStillServes()
    {
        var configuration = new ConfigurationManager();
        configuration["Tandem:FallbackToManaged"] = "false";
        using var services = new ServiceCollection().AddTandem(configuration.GetSection("Tandem")).BuildServiceProvider();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var expected = await SearchOnce(services);
        configuration["Tandem:NativeHotSwap"] = "true";
        ((IConfigurationRoot)configuration).Reload();

        var error = await Assert.ThrowsAsync<TandemException>(() => admin.HotSwapAsync(LibraryPath).AsTask());

        Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
        Assert.Contains("created while NativeHotSwap was off", error.Message);
        await AssertStillServes(services, expected);
    }

    [Fact]
    public async Task NativeLibraryPath_ChangedWhileRunningWithHotSwap_SwapsToTheNewPath()
    {
        var configuration = new ConfigurationManager();
        configuration["Tandem:NativeHotSwap"] = "true";
        configuration["Tandem:FallbackToManaged"] = "false";
        using var services = new ServiceCollection().AddTandem(configuration.GetSection("Tandem")).BuildServiceProvider();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var host = services.GetRequiredService<KernelBackends>().NativeHost;
        var expected = await SearchOnce(services);
        Assert.Equal(1, admin.Current.Generation);

        configuration["Tandem:NativeLibraryPath"] = LibraryPath;
        ((IConfigurationRoot)configuration).Reload();
        await host.ConfigurationSwap!;

        Assert.Equal(2, admin.Current.Generation);
        Assert.Equal(LibraryPath, admin.Current.Path);
        await AssertStillServes(services, expected);
    }

    [Fact]
    public async Task NativeLibraryPath_ChangedWhileRunningWithoutHotSwap_KeepsTheLoadedLibrary()
    {
        var configuration = new ConfigurationManager();
        configuration["Tandem:FallbackToManaged"] = "false";
        using var services = new ServiceCollection().AddTandem(configuration.GetSection("Tandem")).BuildServiceProvider();
        var admin = services.GetRequiredService<INativeLibraryAdmin>();
        var expected = await SearchOnce(services);

        configuration["Tandem:NativeLibraryPath"] = LibraryPath;
        ((IConfigurationRoot)configuration).Reload();

        Assert.Null(services.GetRequiredService<KernelBackends>().NativeHost.ConfigurationSwap);
        Assert.Equal(1, admin.Current.Generation);
        await AssertStillServes(services, expected);
    }

    [Fact]
    public unsafe void Load_TwoCopiesOfOneBuild_AreIndependentLibraries()
    {
        var directory = Directory.CreateTempSubdirectory("tandem-test-");
        try
        {
            var first = LoadCopy(directory, "first");
            var second = LoadCopy(directory, "second");

            Assert.NotEqual(first.Binding.Library, second.Binding.Library);
            Assert.NotEqual((nint)first.Binding.tandem_stream_open, (nint)second.Binding.tandem_stream_open);
            // Each copy numbers its streams from 1: its own stream table, not a shared one.
            Assert.Equal(1ul, OpenBlake3Stream(first));
            Assert.Equal(1ul, OpenBlake3Stream(second));
            NativeErrors.ThrowIfError(first.Binding, first.Binding.tandem_stream_free(1), null);
            NativeErrors.ThrowIfError(second.Binding, second.Binding.tandem_stream_free(1), null);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static ServiceProvider CreateSut(bool hotSwap = true) =>
        new ServiceCollection().AddTandem(o =>
        {
            o.NativeHotSwap = hotSwap;
            // A failure must surface, not hide behind the managed backend.
            o.FallbackToManaged = false;
        }).BuildServiceProvider();

    private static NativeLibrarySet CreateHost(IReadOnlyList<KernelDescriptor>? contracts = null, uint abiMajor = KernelContracts.AbiMajor, string? initialPath = null) =>
        new(() => initialPath is null ? NativeLibraryFixture.Runtime : NativeRuntime.Load(initialPath, KernelContracts.All, NullLogger.Instance), new FixedOptions(new TandemOptions { NativeHotSwap = true }), NullLogger.Instance, TimeProvider.System, contracts ?? KernelContracts.All, abiMajor);

    private static async Task WaitForCalls(SemaphoreSlim progress, int count)
    {
        for (var i = 0; i < count; i++)
        {
            await progress.WaitAsync();
        }
    }

    private static async Task<TopKResult> SearchOnce(IServiceProvider services)
    {
        var search = services.GetRequiredService<ISimilaritySearch>();
        await search.CreateCollectionAsync("docs", TestData.Integers(256, Dimension, seed: 3), Dimension);
        var result = await search.TopKAsync("docs", TestData.Integers(2, Dimension, seed: 5), K);
        Assert.Equal(BackendKind.Native, result.Backend);
        return result;
    }

    private static async Task AssertStillServes(IServiceProvider services, TopKResult expected)
    {
        var result = await services.GetRequiredService<ISimilaritySearch>().TopKAsync("docs", TestData.Integers(2, Dimension, seed: 5), K);
        Assert.Equal(expected.Ids, result.Ids);
        Assert.Equal(expected.Scores, result.Scores);
        Assert.Equal("6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85", Convert.ToHexStringLower(services.GetRequiredService<IBlake3Hashing>().Hash("abc"u8)));
    }

    private static unsafe byte[] Hash(NativeLibrarySet host)
    {
        var backend = new NativeKernelBackend(host, () => new TandemOptions());
        var data = "hot swap"u8.ToArray();
        var digest = new byte[32];
        using var call = new KernelCall(KernelContracts.Blake3).Input<byte>(data, data.Length).Output<byte>(digest, digest.Length);
        backend.Invoke(call);
        return digest;
    }

    private static NativeRuntime LoadCopy(DirectoryInfo directory, string name)
    {
        var copy = Path.Combine(directory.FullName, $"libtandem.{name}.so");
        File.Copy(LibraryPath, copy);
        var runtime = NativeRuntime.Load(copy, KernelContracts.All, NullLogger.Instance);
        Assert.Null(runtime.LoadError);
        return runtime;
    }

    private static unsafe ulong OpenBlake3Stream(NativeRuntime runtime)
    {
        ulong id;
        NativeErrors.ThrowIfError(runtime.Binding, runtime.Binding.tandem_stream_open(runtime.Find(KernelContracts.HashBlake3), &id), null);
        return id;
    }

    private sealed class FixedOptions(TandemOptions value) : IOptionsMonitor<TandemOptions>
    {
        public TandemOptions CurrentValue => value;

        public TandemOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<TandemOptions, string?> listener) => null;
    }
}
