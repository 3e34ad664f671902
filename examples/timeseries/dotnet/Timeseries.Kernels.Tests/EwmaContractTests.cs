using Tandem;

namespace Timeseries.Kernels.Tests;

/// <summary>
/// The contract of <c>timeseries.ewma</c>, written once and run on every
/// backend; the Native and Remote runs are compared bit for bit with the
/// managed twin. Tandem.Testing's contract kit is meant to replace this base
/// class when it ships.
/// </summary>
public abstract class EwmaContractTests<TBackend>(TBackend backend) : IClassFixture<TBackend>
    where TBackend : Backend
{
    [Fact]
    public async Task InvokeAsync_KnownRow_WritesItsMovingAverage()
    {
        var (y, ranOn) = await Ewma.InvokeAsync(backend.Kernels, [1, 2, 3, 3], batch: 1, alpha: 0.5);

        Assert.Equal(backend.Kind, ranOn);
        Assert.Equal([1, 1.5, 2.25, 2.625], y);
    }

    [Fact]
    public async Task InvokeAsync_ManyRows_SameBitsAsTheManagedTwin()
    {
        // 200 × 64 doubles is 100 KiB, so Remote sends it through shared memory.
        var x = RandomWalks(rows: 200, len: 64, seed: 11);
        await using var twin = new ManagedBackend();
        await twin.InitializeAsync();

        var expected = await Ewma.InvokeAsync(twin.Kernels, x, batch: 200, alpha: 0.07);
        var (y, ranOn) = await Ewma.InvokeAsync(backend.Kernels, x, batch: 200, alpha: 0.07);

        Assert.Equal(backend.Kind, ranOn);
        Assert.Equal(Bits(expected.Y), Bits(y));
    }

    [Fact]
    public async Task InvokeAsync_RowsAsConcurrentCalls_SameBitsAsInOneCall()
    {
        // Tandem may batch concurrent calls together. A row's result must not depend on which batch it ends up in.
        const int Rows = 16, Len = 32;
        var x = RandomWalks(Rows, Len, seed: 5);

        var whole = await Ewma.InvokeAsync(backend.Kernels, x, Rows, alpha: 0.2);
        var single = await Task.WhenAll(Enumerable.Range(0, Rows).Select(r => Ewma.InvokeAsync(backend.Kernels, x[(r * Len)..((r + 1) * Len)], batch: 1, alpha: 0.2)));

        Assert.Equal(Bits(whole.Y), Bits(single.SelectMany(r => r.Y).ToArray()));
    }

    [Fact]
    public async Task InvokeAsync_NonFiniteValue_InvalidArgumentNamingTheInput()
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => Ewma.InvokeAsync(backend.Kernels, [1, double.NaN], batch: 1, alpha: 0.5));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'x'", error.Message);
    }

    [Fact]
    public async Task InvokeAsync_AlphaZero_InvalidArgumentNamingTheParameter()
    {
        var error = await Assert.ThrowsAsync<TandemException>(() => Ewma.InvokeAsync(backend.Kernels, [1, 2], batch: 1, alpha: 0));

        Assert.Equal(TandemStatusCode.InvalidArgument, error.Code);
        Assert.Contains("'alpha'", error.Message);
    }

    /// <summary>Seeded random walks: finite values of the kind the kernel smooths.</summary>
    private static double[] RandomWalks(int rows, int len, int seed)
    {
        var random = new Random(seed);
        var x = new double[rows * len];
        for (var row = 0; row < rows; row++)
        {
            var value = 100.0;
            for (var t = 0; t < len; t++)
            {
                value += random.NextDouble() - 0.5;
                x[row * len + t] = value;
            }
        }

        return x;
    }

    private static long[] Bits(double[] values) => Array.ConvertAll(values, BitConverter.DoubleToInt64Bits);
}

public sealed class ManagedEwmaTests(ManagedBackend backend) : EwmaContractTests<ManagedBackend>(backend);

public sealed class NativeEwmaTests(NativeBackend backend) : EwmaContractTests<NativeBackend>(backend);

public sealed class RemoteEwmaTests(RemoteBackend backend) : EwmaContractTests<RemoteBackend>(backend);
