using Tandem.Contracts.V1;
using Tandem.Internal.Contracts;
using Tandem.Internal.Managed;
using Tandem.Kernels;

namespace Tandem.Internal.Kernels;

/// <summary>
/// The kernels this host knows: the reference kernels' contracts plus every
/// contract set declared with AddKernelContracts, and the managed twins
/// registered for them. A twin is accepted only for a known kernel whose
/// descriptor hash it was written against; everything refused is listed in
/// <see cref="Problems"/>, which fails the host at startup.
/// </summary>
internal sealed class KernelCatalog
{
    private readonly Dictionary<string, KernelContract> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, StateKindContract> _stateKinds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IManagedKernel> _twins = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IManagedStateKind> _stateTwins = new(StringComparer.Ordinal);
    private readonly List<string> _problems = [];

    public KernelCatalog(IEnumerable<KernelContractSet> declared, IEnumerable<IManagedKernel> twins, IEnumerable<IManagedStateKind> stateTwins)
    {
        var contracts = new List<KernelContract>();
        var descriptors = new List<KernelDescriptor>();
        foreach (var set in (IEnumerable<KernelContractSet>)[ReferenceSet, .. declared])
        {
            foreach (var kind in set.StateKinds)
            {
                _stateKinds.TryAdd(kind.Name, kind);
            }

            foreach (var contract in set.Kernels)
            {
                if (_kernels.TryGetValue(contract.Name, out var known))
                {
                    if (known.Hash != contract.Hash)
                    {
                        _problems.Add($"kernel '{contract.Name}' is declared twice with different descriptors: hash {known.Hash} and hash {contract.Hash} (library '{set.LibraryName}')");
                    }

                    continue;
                }

                _kernels.Add(contract.Name, contract);
                contracts.Add(contract);
                descriptors.Add(contract.Descriptor);
            }
        }

        Contracts = contracts;
        Descriptors = descriptors;
        foreach (var twin in twins)
        {
            AddTwin(twin);
        }

        foreach (var twin in stateTwins)
        {
            if (!_stateKinds.ContainsKey(twin.Kind))
            {
                _problems.Add($"managed state kind '{twin.GetType().Name}' builds state kind '{twin.Kind}', which no known kernel library declares; declare its library's contracts with AddKernelContracts");
            }
            else if (!_stateTwins.TryAdd(twin.Kind, twin))
            {
                _problems.Add($"state kind '{twin.Kind}' has two managed twins: '{_stateTwins[twin.Kind].GetType().Name}' and '{twin.GetType().Name}'");
            }
        }
    }

    // Initialised in this order: the catalog reads the set.
    /// <summary>Tandem's own kernels, as libtandem.so published them.</summary>
    public static KernelContractSet ReferenceSet { get; } = new(ReferenceKernels.Set);

    /// <summary>The reference kernels and their twins only (what a host without registrations knows).</summary>
    public static KernelCatalog Reference { get; } = new([], ReferenceTwins(), [new ManagedCollectionKind()]);

    /// <summary>The twins of the reference kernels, registered like any other.</summary>
    public static IManagedKernel[] ReferenceTwins() => [new ManagedTopK(), new ManagedMonteCarlo(), new ManagedBlake3Kernel(), new ManagedNoopKernel()];

    public IReadOnlyList<KernelContract> Contracts { get; }

    /// <summary>The descriptors every library and worker is checked against.</summary>
    public IReadOnlyList<KernelDescriptor> Descriptors { get; }

    /// <summary>Why the host refuses its registrations; empty when it accepts them.</summary>
    public IReadOnlyList<string> Problems => _problems;

    public KernelContract? Find(string kernel) => _kernels.GetValueOrDefault(kernel);

    public StateKindContract? FindStateKind(string kind) => _stateKinds.GetValueOrDefault(kind);

    /// <summary>State kind <paramref name="kind"/> and the first kernel that reads it; NOT_FOUND naming which is missing.</summary>
    public (StateKindContract Kind, KernelContract Reader) StateKindAndReader(string kind)
    {
        var contract = FindStateKind(kind)
            ?? throw new TandemException(TandemStatusCode.NotFound, $"this host knows no state kind '{kind}'; declare its library's contracts with AddKernelContracts");
        foreach (var candidate in Contracts)
        {
            if (candidate.StateKind?.Name == kind)
            {
                return (contract, candidate);
            }
        }

        throw new TandemException(TandemStatusCode.NotFound, $"no kernel this host knows reads state kind '{kind}'");
    }

    public IManagedKernel? Twin(string kernel) => _twins.GetValueOrDefault(kernel);

    public IManagedStateKind? StateTwin(string kind) => _stateTwins.GetValueOrDefault(kind);

    /// <summary>Throws FAILED_PRECONDITION naming every problem, when there is one.</summary>
    public void ThrowIfRefused()
    {
        if (_problems.Count > 0)
        {
            throw new TandemException(TandemStatusCode.FailedPrecondition, "Tandem refuses its kernel registrations: " + string.Join("; ", _problems));
        }
    }

    private void AddTwin(IManagedKernel twin)
    {
        var name = twin.GetType().Name;
        if (!_kernels.TryGetValue(twin.Name, out var contract))
        {
            _problems.Add($"managed twin '{name}' implements kernel '{twin.Name}', which no known kernel library publishes; declare its library's contracts with AddKernelContracts");
            return;
        }

        if (!string.Equals(twin.DescriptorHash, contract.Hash, StringComparison.Ordinal))
        {
            _problems.Add($"managed twin '{name}' was written against descriptor hash {twin.DescriptorHash} of kernel '{twin.Name}', but the host's contract has hash {contract.Hash}; update the twin to the kernel's current contract");
            return;
        }

        if (!_twins.TryAdd(twin.Name, twin))
        {
            _problems.Add($"kernel '{twin.Name}' has two managed twins: '{_twins[twin.Name].GetType().Name}' and '{name}'");
        }
    }
}
