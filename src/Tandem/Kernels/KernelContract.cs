using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;

namespace Tandem.Kernels;

/// <summary>
/// What a kernel library publishes about one kernel: name, version, tensors,
/// parameters, state kind, flags and limits, and the descriptor hash that
/// compatibility is decided on. Immutable; built from the library's own
/// descriptors (generated code embeds them), never written by hand.
/// </summary>
public sealed class KernelContract
{
    private Internal.Kernels.KernelInvoker.Plan? _plan;

    internal KernelContract(KernelDescriptor descriptor, StateKindContract? stateKind)
    {
        Descriptor = descriptor;
        StateKind = stateKind;
        Hash = DescriptorHash.Of(descriptor, stateKind?.Descriptor);
        KernelContracts.RememberHash(descriptor, Hash);
        Inputs = [.. descriptor.Inputs.Select(t => new TensorContract(t))];
        Outputs = [.. descriptor.Outputs.Select(t => new TensorContract(t))];
        Params = [.. descriptor.Params.Select((p, i) => new ParamContract(p, i))];
        Flags = new KernelFlags(descriptor.Flags);
        Limits = [.. descriptor.Limits.Select(l => new KernelLimit(l.Name, l.Value, l.Description))];
        OutputSymbols = [.. descriptor.OutputSymbols.Select(s => new KernelLimit(s.Name, s.Max, s.Description))];
    }

    public string Name => Descriptor.Name;

    public uint Version => Descriptor.Version;

    /// <summary>The descriptor hash (lowercase hex), computed from the contract itself as the SDK computes it.</summary>
    public string Hash { get; }

    /// <summary>One line for people.</summary>
    public string Summary => Descriptor.Summary;

    /// <summary>The library that published the contract, when the lister said so.</summary>
    public string Library => Descriptor.Library;

    public IReadOnlyList<TensorContract> Inputs { get; }

    public IReadOnlyList<TensorContract> Outputs { get; }

    /// <summary>Parameters in call order.</summary>
    public IReadOnlyList<ParamContract> Params { get; }

    /// <summary>The state kind the kernel reads, or null when it is stateless.</summary>
    public StateKindContract? StateKind { get; }

    public KernelFlags Flags { get; }

    /// <summary>Limits callers need (longest output, most paths).</summary>
    public IReadOnlyList<KernelLimit> Limits { get; }

    /// <summary>Output dimensions no input binds: the caller chooses their size, up to <see cref="KernelLimit.Value"/> (0: no bound).</summary>
    public IReadOnlyList<KernelLimit> OutputSymbols { get; }

    internal KernelDescriptor Descriptor { get; }

    /// <summary>The contract reduced to symbol indices for the invoker, computed on first use.</summary>
    internal Internal.Kernels.KernelInvoker.Plan Plan => _plan ??= new(this);

    public override string ToString() => $"{Name} v{Version} ({Hash})";
}

/// <summary>The named flags of a kernel contract.</summary>
public sealed class KernelFlags
{
    internal KernelFlags(Contracts.V1.KernelFlags? flags)
    {
        Idempotent = flags?.Idempotent ?? false;
        Batchable = flags?.Batchable ?? false;
        Deterministic = flags?.Deterministic ?? false;
        Streaming = flags?.Streaming ?? false;
    }

    /// <summary>Running a call twice has the effect of running it once: it may be retried.</summary>
    public bool Idempotent { get; }

    /// <summary>Inputs and outputs may be split and merged along axis 0.</summary>
    public bool Batchable { get; }

    public bool Deterministic { get; }

    /// <summary>The kernel also runs as a stream (open, append, finalize).</summary>
    public bool Streaming { get; }
}

/// <summary>A named bound a kernel publishes (a limit, or the largest size of a caller-chosen output symbol).</summary>
public sealed class KernelLimit
{
    internal KernelLimit(string name, long value, string description)
    {
        Name = name;
        Value = value;
        Description = description;
    }

    public string Name { get; }

    public long Value { get; }

    public string Description { get; }
}
