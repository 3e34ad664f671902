namespace Tandem;

/// <summary>
/// Per-kernel switches (<see cref="TandemOptions.Kernels"/>, keyed by kernel
/// name such as <c>similarity.topk</c>); unset values follow the global
/// options. Changes apply to new calls (for a stateful kernel, to new states).
/// </summary>
public sealed class KernelOptions
{
    /// <summary>The backend this kernel runs on; null follows <see cref="TandemOptions.Backend"/>.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public BackendKind? Backend { get; set; }

    /// <summary>Whether this kernel's calls are batched; null follows <see cref="BatchingOptions.Enabled"/>.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public bool? Batching { get; set; }

    /// <summary>
    /// Whether results of this kernel are cached, content-keyed by kernel,
    /// version, inputs, parameters and state. Only idempotent, deterministic
    /// kernels are ever cached.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool Cache { get; set; }

    /// <summary>
    /// Calls whose inputs total fewer bytes than this run on the managed twin
    /// whatever the backend, where a call costs less than crossing into Rust
    /// or to a worker (measure first: docs/performance.md); 0 never does.
    /// </summary>
    /// <value>The default is 0.</value>
    [System.ComponentModel.DataAnnotations.Range(0, int.MaxValue)]
    public int ManagedBelowBytes { get; set; }
}
