using Tandem.Kernels;

namespace Tandem.Tests.Kernels;

/// <summary>C# twins of the fixture library's kernels, written as a user writes them: against the generated contracts only.</summary>
public sealed class ScaleTwin : ManagedKernel
{
    private int _runs;

    public ScaleTwin()
        : base(FixtureKernels.FixtureScale.Name, FixtureKernels.FixtureScale.Hash)
    {
    }

    public int Runs => Volatile.Read(ref _runs);

    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        var factor = call.FloatParam(FixtureKernels.FixtureScale.Params.Factor.Index);
        var x = call.Input<double>(0);
        var y = call.Output<double>(0);
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = factor * x[i];
        }
    }
}

public sealed class TableTwin : ManagedStateKind
{
    public TableTwin()
        : base(FixtureKernels.StateKinds.FixtureTable.Name)
    {
    }

    public override object Create(ManagedKernelCall tensors) => tensors.Input<double>(0).ToArray();

    public override long SizeBytes(object state) => ((double[])state).Length * sizeof(double);
}

public sealed class LookupTwin : ManagedKernel
{
    public LookupTwin()
        : base(FixtureKernels.FixtureLookup.Name, FixtureKernels.FixtureLookup.Hash)
    {
    }

    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
        var table = call.State<double[]>();
        var indices = call.Input<long>(0);
        var values = call.Output<double>(0);
        for (var i = 0; i < indices.Length; i++)
        {
            values[i] = table[indices[i]];
        }
    }
}

public sealed class ByteSumTwin : ManagedKernel
{
    public ByteSumTwin()
        : base(FixtureKernels.FixtureBytesum.Name, FixtureKernels.FixtureBytesum.Hash)
    {
    }

    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
        var sum = 0UL;
        foreach (var b in call.Input<byte>(0))
        {
            sum += b;
        }

        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(call.Output<byte>(0), sum);
    }

    public override ManagedKernelStream OpenStream() => new Stream();

    private sealed class Stream : ManagedKernelStream
    {
        private ulong _sum;

        public override void Append(ReadOnlySpan<byte> data)
        {
            foreach (var b in data)
            {
                _sum += b;
            }
        }

        public override void Finalize(Span<byte> output) => System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(output, _sum);
    }
}

/// <summary>Names a kernel no library publishes.</summary>
public sealed class UnknownKernelTwin() : ManagedKernel("fixture.missing", FixtureKernels.FixtureScale.Hash)
{
    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
    }
}

/// <summary>Written against another descriptor of <c>fixture.scale</c>.</summary>
public sealed class StaleScaleTwin() : ManagedKernel(FixtureKernels.FixtureScale.Name, "00000000000000000000000000000000")
{
    public override void Run(ManagedKernelCall call, CancellationToken cancellationToken)
    {
    }
}
