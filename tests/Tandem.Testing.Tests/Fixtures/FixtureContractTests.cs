using Microsoft.Extensions.DependencyInjection;
using Tandem.Kernels;
using Tandem.Tests.Kernels;

namespace Tandem.Testing.Tests.Fixtures;

/// <summary>
/// What a user of the kit writes for the fixture library: its contracts, its
/// twins on every host, the library in process for Native and one supervised
/// worker serving it for Remote.
/// </summary>
public abstract class FixtureContractTests(KernelTestHosts hosts) : KernelContractTests(hosts)
{
    protected override KernelContractSet Contracts => FixtureKernels.Contracts;

    protected override void ConfigureServices(IServiceCollection services, BackendKind backend)
    {
        services.AddManagedKernel<ScaleTwin>()
            .AddManagedKernel<LookupTwin>()
            .AddManagedStateKind<TableTwin>()
            .AddManagedKernel<ByteSumTwin>();
        if (backend == BackendKind.Native)
        {
            services.Configure<TandemOptions>(o => o.NativeLibraryPath = FixtureLibrary.Path);
        }
        else if (backend == BackendKind.Remote)
        {
            services.AddTandemRemote(o =>
            {
                o.WorkerPath = FixtureLibrary.WorkerPath;
                o.WorkerCount = 1;
                o.DrainGrace = TimeSpan.FromSeconds(2);
                o.KernelLibraries.Add(FixtureLibrary.Path);
            });
        }
    }
}

/// <summary>fixture.scale: batchable, a finite-only input and a float parameter.</summary>
public sealed class FixtureScaleContractTests(KernelTestHosts hosts) : FixtureContractTests(hosts)
{
    protected override string Kernel => FixtureKernels.FixtureScale.Name;
}

/// <summary>fixture.lookup: reads a fixture.table state, so its indices are drawn below the table's length.</summary>
public sealed class FixtureLookupContractTests(KernelTestHosts hosts) : FixtureContractTests(hosts)
{
    protected override string Kernel => FixtureKernels.FixtureLookup.Name;

    protected override Array DrawTensor(TensorContract tensor, IReadOnlyList<long> shape, KernelDraw draw)
    {
        if (tensor.Name != "indices")
        {
            return base.DrawTensor(tensor, shape, draw);
        }

        var indices = new long[shape[0]];
        for (var i = 0; i < indices.Length; i++)
        {
            indices[i] = draw.Random.NextInt64(0, draw.Symbols["n"]);
        }

        return indices;
    }

    /// <summary>The descriptor's refusals, and one only the kernel knows: an index past the table.</summary>
    protected override IEnumerable<InvalidInput> InvalidInputs(KernelCase valid) =>
        base.InvalidInputs(valid).Append(InvalidInput.Call(
            "an index past the table",
            state => new KernelRequest(Kernel) { State = state }.Input<long>(new[] { valid.Symbols["n"] }, 1)));
}

/// <summary>fixture.bytesum: a stream, and a plain call over bytes.</summary>
public sealed class FixtureByteSumContractTests(KernelTestHosts hosts) : FixtureContractTests(hosts)
{
    protected override string Kernel => FixtureKernels.FixtureBytesum.Name;
}
