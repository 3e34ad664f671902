namespace Tandem.Testing;

/// <summary>
/// The backends a class derived from <see cref="KernelContractTests"/> checks
/// against the managed twin; without it, both <see cref="BackendKind.Native"/>
/// and <see cref="BackendKind.Remote"/>. Each test of the kit runs once per
/// backend listed (xunit shows the backend as the test's argument).
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = true, AllowMultiple = false)]
public sealed class KernelBackendsAttribute : Attribute
{
    /// <param name="backends">Native, Remote or both; Managed is the reference and needs no listing.</param>
    public KernelBackendsAttribute(params BackendKind[] backends)
    {
        ArgumentNullException.ThrowIfNull(backends);
        Backends = backends;
    }

    /// <summary>The backends under test.</summary>
    public IReadOnlyList<BackendKind> Backends { get; }
}
