using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Tandem.Kernels;
using Tandem.Remote;
using Tandem.Testing.Internal;

namespace Tandem.Testing;

/// <summary>
/// The contract test kit: derive a public class from it for one kernel, and
/// xunit runs its tests on that class — the kernel on each backend listed in
/// <see cref="KernelBackendsAttribute"/> (Native and Remote by default)
/// against its managed twin, on random valid inputs drawn from the
/// descriptor, for batch invariance, for every bad input the descriptor
/// implies, and for streams. Every host runs with
/// <see cref="TandemOptions.FallbackToManaged"/> off, so a backend that
/// cannot serve the kernel fails instead of quietly running the twin.
/// </summary>
/// <remarks>
/// Supply <see cref="Kernel"/>, <see cref="Contracts"/> and
/// <see cref="ConfigureServices"/>; override the drawing hooks
/// (<see cref="DrawSymbol"/>, <see cref="DrawTensor"/>,
/// <see cref="DrawParam"/>) when the descriptor cannot say which values are
/// valid, <see cref="ToleranceFor"/> when the kernel is not bitwise equal to
/// its twin, and <see cref="InvalidInputs"/> to add refusals of your own.
/// Failures name the seed, the shapes and the first differing element; a
/// case is reproduced by <see cref="DrawCase"/> with its seed.
/// </remarks>
public abstract partial class KernelContractTests : IClassFixture<KernelTestHosts>
{
    private readonly KernelTestHosts _hosts;
    private KernelContract? _contract;

    /// <param name="hosts">The class fixture xunit passes to the derived class's constructor.</param>
    protected KernelContractTests(KernelTestHosts hosts)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        _hosts = hosts;
    }

    /// <summary>The kernel under test, for example a generated <c>Name</c> constant.</summary>
    protected abstract string Kernel { get; }

    /// <summary>The contracts of the kernel's library (the generated <c>Contracts</c>); the kit declares them to every host.</summary>
    protected abstract KernelContractSet Contracts { get; }

    /// <summary>The kernel's contract, from <see cref="Contracts"/>.</summary>
    protected KernelContract Contract => _contract ??= Contracts[Kernel];

    /// <summary>
    /// The first seed; case <c>i</c> of a test is drawn from <c>Seed + i</c>.
    /// Failure messages name the seed of the failing case.
    /// </summary>
    /// <value>The default is <c>$TANDEM_TESTING_SEED</c> when set, else 1.</value>
    protected virtual int Seed =>
        int.TryParse(Environment.GetEnvironmentVariable("TANDEM_TESTING_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed) ? seed : 1;

    /// <summary>Random cases of <see cref="RandomInputs_MatchTheManagedTwin"/>.</summary>
    /// <value>The default is 8.</value>
    protected virtual int CaseCount => 8;

    /// <summary>Bounds of what is drawn.</summary>
    /// <value>The default is <see cref="KernelTestSizes"/>' defaults: at most 64 rows, other dimensions at most 16, streams at most 4096 bytes.</value>
    protected virtual KernelTestSizes Sizes { get; } = new();

    /// <summary>
    /// Registers what a host of <paramref name="backend"/> needs beyond what
    /// the kit adds (<c>AddTandem()</c> and <c>AddKernelContracts(Contracts)</c>):
    /// the managed twin and its state kind (<c>AddManagedKernel</c>,
    /// <c>AddManagedStateKind</c>) for every backend; for Native the
    /// kernel library (for example <c>services.Configure&lt;TandemOptions&gt;(o =&gt; o.NativeLibraryPath = …)</c>);
    /// for Remote <c>AddTandemRemote</c> with the library in
    /// <see cref="RemoteOptions.KernelLibraries"/>. Called once per backend,
    /// <see cref="BackendKind.Managed"/> included; the kit then sets the
    /// backend and turns fallback off, whatever was configured.
    /// </summary>
    protected abstract void ConfigureServices(IServiceCollection services, BackendKind backend);

    /// <summary>How close <paramref name="output"/> of the backend must be to the twin's.</summary>
    /// <value>The default is <see cref="Tolerance.Bitwise"/>: override it for a kernel whose floating-point results may differ from its twin's.</value>
    protected virtual Tolerance ToleranceFor(TensorContract output) => Tolerance.Bitwise;

    /// <summary>
    /// The size of <paramref name="symbol"/>: the batch symbol 1 to
    /// <see cref="KernelTestSizes.MaxRows"/>, an output symbol 1 to its limit
    /// (at most <see cref="KernelTestSizes.MaxDimension"/>), any other 1 to
    /// <see cref="KernelTestSizes.MaxDimension"/>. Symbols are drawn in the
    /// order the state kind's tensors, the inputs, then the output symbols
    /// use them; <see cref="KernelDraw.Symbols"/> holds the earlier ones.
    /// </summary>
    protected virtual long DrawSymbol(string symbol, KernelDraw draw)
    {
        ArgumentNullException.ThrowIfNull(draw);
        if (symbol == draw.BatchSymbol)
        {
            return draw.Random.Next(1, draw.Sizes.MaxRows + 1);
        }

        var max = (long)draw.Sizes.MaxDimension;
        foreach (var limit in draw.Contract.OutputSymbols)
        {
            if (limit.Name == symbol && limit.Value > 0)
            {
                max = Math.Min(max, limit.Value);
            }
        }

        return draw.Random.NextInt64(1, max + 1);
    }

    /// <summary>
    /// The data of <paramref name="tensor"/> (an input, or a state's creation
    /// tensor) with <paramref name="shape"/>: an array of the dtype's element
    /// type holding the shape's element count. By default bytes take any
    /// value, integers −100 to 100 and floats −10 to 10 (always finite).
    /// Override it for values the descriptor cannot constrain (indices into
    /// a state, sorted keys), falling back to the base for the others.
    /// </summary>
    protected virtual Array DrawTensor(TensorContract tensor, IReadOnlyList<long> shape, KernelDraw draw)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(draw);
        var random = draw.Random;
        var data = TensorData.NewArray(tensor.DType, TensorData.ElementCount(shape));
        switch (data)
        {
            case byte[] bytes:
                random.NextBytes(bytes);
                break;
            case int[] ints:
                for (var i = 0; i < ints.Length; i++)
                {
                    ints[i] = random.Next(-100, 101);
                }

                break;
            case long[] longs:
                for (var i = 0; i < longs.Length; i++)
                {
                    longs[i] = random.NextInt64(-100, 101);
                }

                break;
            case float[] floats:
                for (var i = 0; i < floats.Length; i++)
                {
                    floats[i] = (random.NextSingle() * 20) - 10;
                }

                break;
            case double[] doubles:
                for (var i = 0; i < doubles.Length; i++)
                {
                    doubles[i] = (random.NextDouble() * 20) - 10;
                }

                break;
        }

        return data;
    }

    /// <summary>
    /// The value of <paramref name="param"/>, within its range: a float
    /// anywhere in [min, max] (its min, max or default one time in eight
    /// each), an integer from min to min + <see cref="KernelTestSizes.MaxIntParamSpan"/>,
    /// a boolean 0 or 1, an enum the index of any choice.
    /// </summary>
    protected virtual double DrawParam(ParamContract param, KernelDraw draw)
    {
        ArgumentNullException.ThrowIfNull(param);
        ArgumentNullException.ThrowIfNull(draw);
        var random = draw.Random;
        switch (param.Kind)
        {
            case ParamKind.Float:
                return random.Next(8) switch
                {
                    0 => param.Min,
                    1 => param.Max,
                    2 => param.Default,
                    _ => Math.Clamp(param.Min + (random.NextDouble() * (param.Max - param.Min)), param.Min, param.Max),
                };
            case ParamKind.Enum:
                return random.Next(param.Choices.Count);
            case ParamKind.Bool:
                return random.Next(2);
            default:
                var min = (long)Math.Ceiling(param.Min);
                var max = (long)Math.Min(Math.Floor(param.Max), min + (double)draw.Sizes.MaxIntParamSpan);
                return random.NextInt64(min, max + 1);
        }
    }

    /// <summary>
    /// The inputs <see cref="InvalidInputs_AreRefused"/> expects refused,
    /// each a small change of <paramref name="valid"/>: by default every one
    /// the descriptor implies. Return more (<c>base.InvalidInputs(valid).Append(…)</c>)
    /// for refusals only the kernel knows of, such as an index beyond a state.
    /// </summary>
    protected virtual IEnumerable<InvalidInput> InvalidInputs(KernelCase valid) => DescriptorInvalidInputs.For(valid);

    /// <summary>
    /// Draws a valid case from <paramref name="seed"/>: every symbol's size
    /// (<see cref="DrawSymbol"/>, unless <paramref name="symbols"/> fixes it),
    /// the state's tensors and the inputs (<see cref="DrawTensor"/>), the
    /// parameters (<see cref="DrawParam"/>) and the output symbols' sizes.
    /// </summary>
    protected KernelCase DrawCase(int seed, IReadOnlyDictionary<string, long>? symbols = null)
    {
        var contract = Contract;
        var drawn = new Dictionary<string, long>(StringComparer.Ordinal);
        var draw = new KernelDraw(contract, seed, Sizes, drawn);
        var stateSpecs = contract.StateKind?.Tensors ?? [];
        foreach (var symbol in stateSpecs.Concat(contract.Inputs).Concat(contract.Outputs)
            .SelectMany(t => t.Shape).Where(d => d.IsSymbolic).Select(d => d.Symbol!)
            .Concat(contract.OutputSymbols.Select(s => s.Name)))
        {
            if (!drawn.ContainsKey(symbol))
            {
                drawn[symbol] = symbols is not null && symbols.TryGetValue(symbol, out var size) ? size : DrawSymbol(symbol, draw);
            }
        }

        TensorData Tensor(TensorContract spec)
        {
            var shape = spec.Shape.Select(d => d.IsSymbolic ? drawn[d.Symbol!] : d.Size).ToArray();
            return new TensorData(spec.Name, spec.DType, shape, DrawTensor(spec, shape, draw));
        }

        var state = contract.StateKind is null ? null : stateSpecs.Select(Tensor).ToArray();
        var inputs = contract.Inputs.Select(Tensor).ToArray();
        var parameters = contract.Params.Select(p => (p, DrawParam(p, draw))).ToArray();
        var outputSymbols = contract.OutputSymbols.ToDictionary(s => s.Name, s => drawn[s.Name], StringComparer.Ordinal);
        return new KernelCase(contract, seed, drawn, state, inputs, parameters, outputSymbols);
    }

    /// <summary>The invoker of the host of <paramref name="backend"/> (built on first use and shared by the class's tests).</summary>
    protected async Task<IKernelInvoker> InvokerAsync(BackendKind backend)
    {
        var host = await _hosts.GetAsync(backend, BuildHostAsync).ConfigureAwait(false);
        return host.GetRequiredService<IKernelInvoker>();
    }

    /// <summary>Creates the case's state on <paramref name="invoker"/>'s host, or returns null when the kernel reads none.</summary>
    protected static async Task<KernelState?> CreateStateAsync(IKernelInvoker invoker, KernelCase @case)
    {
        ArgumentNullException.ThrowIfNull(invoker);
        ArgumentNullException.ThrowIfNull(@case);
        if (@case.Contract.StateKind is not { } kind || @case.StateTensors is not { } tensors)
        {
            return null;
        }

        return await invoker.CreateStateAsync(kind.Name, [.. tensors.Select(t => t.ToKernelTensor())]).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="case"/> on <paramref name="backend"/> (its state created there and disposed after).</summary>
    protected async Task<KernelResult> RunAsync(BackendKind backend, KernelCase @case)
    {
        ArgumentNullException.ThrowIfNull(@case);
        var invoker = await InvokerAsync(backend).ConfigureAwait(false);
        using var state = await CreateStateAsync(invoker, @case).ConfigureAwait(false);
        return await invoker.InvokeAsync(@case.ToRequest(state)).ConfigureAwait(false);
    }

    /// <summary>
    /// Fails unless <paramref name="case"/> on <paramref name="backend"/>
    /// succeeds, reports that backend, and equals the managed twin's result
    /// within <see cref="ToleranceFor"/>.
    /// </summary>
    protected async Task AssertMatchesManagedAsync(BackendKind backend, KernelCase @case)
    {
        ArgumentNullException.ThrowIfNull(@case);
        var expected = await RunValidAsync(BackendKind.Managed, @case).ConfigureAwait(false);
        var actual = await RunValidAsync(backend, @case).ConfigureAwait(false);
        AssertBackend(backend, actual.Backend, "the result", @case);
        KernelResultAssert.Equal(expected, actual, ToleranceFor, $"{Kernel} on {backend} differs from its managed twin ({@case}; {Reproduce(@case)})");
    }

    private async Task<KernelResult> RunValidAsync(BackendKind backend, KernelCase @case)
    {
        try
        {
            return await RunAsync(backend, @case).ConfigureAwait(false);
        }
        catch (TandemException e)
        {
            Assert.Fail($"{Kernel} on {Who(backend)} refused a valid case ({@case}; {Reproduce(@case)}): {Describe(e)}");
            throw;
        }
    }

    private void AssertBackend(BackendKind expected, BackendKind actual, string what, KernelCase @case)
    {
        if (expected != actual)
        {
            Assert.Fail($"{Kernel}: {what} was served by {actual}, not by the {expected} backend under test ({@case}): the host fell back, or {expected} does not serve the kernel");
        }
    }

    private static string Who(BackendKind backend) => backend == BackendKind.Managed ? "its managed twin" : backend.ToString();

    private static string Reproduce(KernelCase @case) => $"reproduce with DrawCase({@case.Seed})";

    private static string Describe(Exception e) => e is TandemException t
        ? $"TandemException {t.Code} (backend {t.Backend?.ToString() ?? "none"}): {t.Message}"
        : $"{e.GetType().Name}: {e.Message}";

    private async Task<ServiceProvider> BuildHostAsync(BackendKind backend)
    {
        var services = new ServiceCollection();
        services.AddTandem().AddKernelContracts(Contracts);
        ConfigureServices(services, backend);
        var kernel = Kernel;
        services.PostConfigure<TandemOptions>(o =>
        {
            o.Backend = backend;
            o.FallbackToManaged = false;
            if (o.Kernels.TryGetValue(kernel, out var options))
            {
                options.Backend = null;
            }
        });
        var provider = services.BuildServiceProvider();
        try
        {
            var invoker = provider.GetRequiredService<IKernelInvoker>();
            var known = invoker.GetContract(kernel);
            if (known.Hash != Contract.Hash)
            {
                throw new InvalidOperationException($"the {backend} host knows {known}, not {Contract} from Contracts");
            }

            if (backend == BackendKind.Remote && provider.GetService<IWorkerPoolAdmin>() is { } workers)
            {
                await workers.StartAsync().ConfigureAwait(false);
            }

            return provider;
        }
        catch
        {
            await provider.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}
