using Microsoft.Extensions.DependencyInjection;
using Tandem.Internal.Contracts;
using Tandem.Kernels;
using Tandem.Tests.Shared;
using Tandem.Tests.Kernels;

namespace Tandem.Tests.States;

/// <summary>
/// The state repository through the public API (<see cref="IStateRepository"/>):
/// a stored state and the same state loaded back answer exactly as one made
/// with CreateStateAsync, on the native backend (memory-mapped) and on the
/// managed one (built from the file's tensors); a file written through one
/// backend loads on the other; a user's state kind goes the same way; and
/// every misuse is refused with its own code, leaving nothing behind.
/// </summary>
[Collection(FixtureLibraryCollection.Name)]
public sealed class StateRepositoryTests : IDisposable
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so");
    private static readonly string Kind = ReferenceKernels.StateKinds.VectorCollection.Name;
    private static readonly float[] Vectors = [1, 0, 0, 1, 1, 1, -1, 2];
    private static readonly long[] Ids = [40, 30, 20, 10];

    private readonly TempStateRepository _repository = new();

    public void Dispose() => _repository.Dispose();

    [Theory]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Managed)]
    public async Task StoreThenLoad_AnswersAsACreatedState_OnTheServingBackend(BackendKind backend)
    {
        using var services = CreateSut(o => o.Backend = backend);
        var invoker = services.GetRequiredService<IKernelInvoker>();
        var repository = services.GetRequiredService<IStateRepository>();
        using var created = await invoker.CreateStateAsync(Kind, Tensors());

        using var stored = await repository.StoreAsync(Kind, "docs", 1, Tensors());
        using var loaded = await repository.LoadAsync("docs", 1);
        using var newest = await repository.LoadAsync("docs");

        var expected = await TopKAsync(invoker, created);
        Assert.Equal(backend, stored.Backend);
        Assert.Equal(backend, loaded.Backend);
        Assert.Equal(expected, await TopKAsync(invoker, stored));
        Assert.Equal(expected, await TopKAsync(invoker, loaded));
        Assert.Equal(expected, await TopKAsync(invoker, newest));
        var listed = Assert.Single(repository.List());
        // 32 bytes of vectors, padded to the 64-byte alignment, then 32 bytes of ids.
        Assert.Equal(("docs", 1L, Kind, 96L), (listed.Name, listed.Version, listed.Kind, listed.SizeBytes));
        Assert.True(listed.CreatedAt > DateTimeOffset.UtcNow.AddMinutes(-5));
    }

    [Fact]
    public async Task AFileStoredThroughTheManagedBackend_LoadsOnTheNativeOne()
    {
        using (var managed = CreateSut(o => o.Backend = BackendKind.Managed))
        {
            using var stored = await managed.GetRequiredService<IStateRepository>().StoreAsync(Kind, "shared", 7, Tensors());
        }

        using var native = CreateSut(o => o.Backend = BackendKind.Native);
        using var loaded = await native.GetRequiredService<IStateRepository>().LoadAsync("shared", 7);
        Assert.Equal(BackendKind.Native, loaded.Backend);
        // Query (1, 1): row (1, 1) scores 2, then a tie at 1 that the lower id wins.
        Assert.Equal([(20L, 2f), (10L, 1f)], (await TopKAsync(native.GetRequiredService<IKernelInvoker>(), loaded)).Take(2));
    }

    [Fact]
    public async Task AUserStateKind_StoresAndLoadsThroughItsOwnLibrary()
    {
        using var services = CreateSut(o =>
        {
            o.Backend = BackendKind.Native;
            o.NativeLibraryPath = FixturePath;
        });
        var repository = services.GetRequiredService<IStateRepository>();
        using (await repository.StoreAsync(FixtureKernels.StateKinds.FixtureTable.Name, "table", 1, [KernelTensor.Of<double>(new double[] { 10, 20, 30 }, 3)]))
        {
        }

        using var table = await repository.LoadAsync("table");
        var result = await services.GetRequiredService<IKernelInvoker>().InvokeAsync(new KernelRequest(FixtureKernels.FixtureLookup.Name) { State = table }.Input<long>(new long[] { 2, 0 }, 2));
        Assert.Equal(new double[] { 30, 10 }, result.Output<double>(0).ToArray());
    }

    [Fact]
    public async Task WithoutARepository_EveryOperationSaysWhichOptionToSet()
    {
        using var services = CreateSut(o => o.Backend = BackendKind.Native, root: null);
        var repository = services.GetRequiredService<IStateRepository>();

        Assert.False(repository.IsConfigured);
        foreach (var operation in new Func<Task>[]
        {
            () => repository.StoreAsync(Kind, "x", 1, Tensors()).AsTask(),
            () => repository.LoadAsync("x").AsTask(),
            () => Task.Run(() => repository.List()),
            () => Task.Run(() => repository.Remove("x")),
        })
        {
            var error = await Assert.ThrowsAsync<TandemException>(operation);
            Assert.Equal(TandemStatusCode.FailedPrecondition, error.Code);
            Assert.Contains("Tandem:StateRepository", error.Message);
        }
    }

    [Theory]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Managed)]
    public async Task Misuse_IsRefusedWithItsOwnCode_AndStoresNothing(BackendKind backend)
    {
        using var services = CreateSut(o => o.Backend = backend);
        var repository = services.GetRequiredService<IStateRepository>();
        var nan = Vectors.ToArray();
        nan[3] = float.NaN;

        await Refused(TandemStatusCode.InvalidArgument, "NaN", () => repository.StoreAsync(Kind, "nan", 1, [KernelTensor.Of<float>(nan, 4, 2), KernelTensor.Absent]).AsTask());
        await Refused(TandemStatusCode.InvalidArgument, "ids must be unique", () => repository.StoreAsync(Kind, "dup", 1, [KernelTensor.Of<float>(Vectors, 4, 2), KernelTensor.Of<long>(new long[] { 1, 1, 2, 3 }, 4)]).AsTask());
        await Refused(TandemStatusCode.InvalidArgument, "versions start at 1", () => repository.StoreAsync(Kind, "zero", 0, Tensors()).AsTask());
        await Refused(TandemStatusCode.InvalidArgument, "not allowed", () => repository.StoreAsync(Kind, "../escape", 1, Tensors()).AsTask());
        await Refused(TandemStatusCode.NotFound, "no state kind 'nope'", () => repository.StoreAsync("nope", "x", 1, Tensors()).AsTask());
        Assert.Empty(repository.List());

        using (await repository.StoreAsync(Kind, "once", 1, Tensors()))
        {
        }

        await Refused(TandemStatusCode.AlreadyExists, "never changes", () => repository.StoreAsync(Kind, "once", 1, Tensors()).AsTask());
        await Refused(TandemStatusCode.NotFound, "version(s) 1", () => repository.LoadAsync("once", 2).AsTask());
        await Refused(TandemStatusCode.NotFound, "no version", () => repository.LoadAsync("never").AsTask());
        await Refused(TandemStatusCode.NotFound, "nothing was removed", () => Task.Run(() => repository.Remove("never")));
        repository.Remove("once");
        Assert.Empty(repository.List());
    }

    [Theory]
    [InlineData(BackendKind.Native)]
    [InlineData(BackendKind.Managed)]
    public async Task ADamagedFile_IsRefusedAsDataLoss_AndNeverServed(BackendKind backend)
    {
        using var services = CreateSut(o => o.Backend = backend);
        var repository = services.GetRequiredService<IStateRepository>();
        using (await repository.StoreAsync(Kind, "docs", 1, Tensors()))
        {
        }

        await _repository.CorruptAsync("docs", 1, offset: -60);
        await Refused(TandemStatusCode.DataLoss, "checksum", () => repository.LoadAsync("docs", 1).AsTask());
        var file = _repository.FileOf("docs", 1);
        await File.WriteAllBytesAsync(file, (await File.ReadAllBytesAsync(file))[..100]);
        await Refused(TandemStatusCode.DataLoss, "unreadable", () => repository.LoadAsync("docs", 1).AsTask());
    }

    private static async Task Refused(TandemStatusCode code, string needle, Func<Task> operation)
    {
        var error = await Assert.ThrowsAsync<TandemException>(operation);
        Assert.Equal(code, error.Code);
        Assert.Contains(needle, error.Message);
    }

    private static KernelTensor[] Tensors() => [KernelTensor.Of<float>(Vectors, 4, 2), KernelTensor.Of<long>(Ids, 4)];

    private static async Task<(long Id, float Score)[]> TopKAsync(IKernelInvoker invoker, KernelState state)
    {
        var result = await invoker.InvokeAsync(new KernelRequest(ReferenceKernels.SimilarityTopk.Name) { State = state }
            .Input<float>(new float[] { 1, 1, 0, 1 }, 2, 2)
            .Param("k", 3)
            .Param("metric", "dot")
            .OutputSymbol("k", 3));
        return [.. result.Output<long>("ids").ToArray().Zip(result.Output<float>("scores").ToArray())];
    }

    private ServiceProvider CreateSut(Action<TandemOptions> configure, string? root = "default")
    {
        var path = root is null ? null : _repository.Root;
        return new ServiceCollection()
            .AddTandem(o =>
            {
                o.StateRepository = path;
                configure(o);
            })
            .AddKernelContracts(FixtureKernels.Contracts)
            .AddManagedStateKind<TableTwin>()
            .AddManagedKernel<LookupTwin>()
            .BuildServiceProvider();
    }
}
