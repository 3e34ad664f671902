using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Tandem;

/// <summary>Options of <c>AddTandem</c>; validated at startup.</summary>
public sealed class TandemOptions
{
    /// <summary>Configuration section conventionally bound to these options.</summary>
    public const string SectionName = "Tandem";

    /// <summary>Backend kernels run on.</summary>
    /// <value>The default is <see cref="BackendKind.Native"/>.</value>
    [EnumDataType(typeof(BackendKind))]
    public BackendKind Backend { get; set; } = BackendKind.Native;

    /// <summary>
    /// Whether a kernel the native library cannot serve runs on the managed
    /// backend instead of failing: at load (library missing, ABI or descriptor
    /// mismatch: otherwise FAILED_PRECONDITION) and per call, after retries,
    /// when a stateless kernel fails with INTERNAL, UNAVAILABLE or
    /// RESOURCE_EXHAUSTED or its circuit is open. Remote calls fall back the
    /// same way (also after DEADLINE_EXCEEDED while the caller still waits)
    /// to Native when it serves the kernel, else Managed. Every fallback is
    /// counted in <c>tandem.fallbacks</c> with its reason.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool FallbackToManaged { get; set; } = true;

    /// <summary>
    /// Full path of libtandem.so; null loads the one next to the application.
    /// Changing it while the application runs hot-swaps the library when
    /// <see cref="NativeHotSwap"/> is on (otherwise it applies at the next start).
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? NativeLibraryPath { get; set; }

    /// <summary>
    /// Kernel libraries loaded in process beside libtandem.so (at most 64),
    /// each a path (relative to the application's directory) or a name:
    /// <c>ewma</c> finds <c>libewma.so</c> next to the application or in the
    /// <c>runtimes/&lt;rid&gt;/native</c> folder of a package it references.
    /// Kernel and state-kind names must be unique across all libraries:
    /// startup fails naming both libraries otherwise, as it does for a file
    /// that is missing, not a Tandem library, or of another ABI major. Each
    /// library is hot-swapped on its own
    /// (<see cref="Native.INativeLibraryAdmin.HotSwapAsync(string, string, CancellationToken)"/>);
    /// a change of this list applies at the next start.
    /// </summary>
    /// <value>The default is empty.</value>
    public List<string> KernelLibraries { get; set; } = [];

    /// <summary>
    /// Whether the native library can be replaced while the application runs
    /// (<see cref="Native.INativeLibraryAdmin.HotSwapAsync"/> or a change of
    /// <see cref="NativeLibraryPath"/>). When on, every native state (vector
    /// collection) created afterwards keeps a managed copy of the tensors it
    /// was created from, to rebuild it in the new library: its memory doubles.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool NativeHotSwap { get; set; }

    /// <summary>
    /// Directory of the durable state repository (docs/architecture.md, "The
    /// state repository"): states stored there with
    /// <see cref="Kernels.IStateRepository.StoreAsync"/> are written once,
    /// survive restarts and load memory-mapped on the native backend. It may
    /// be a volume several hosts share. Null: no repository (states live only
    /// in memory). Read when an operation runs, so a change applies to the
    /// next one; states already loaded keep their files mapped.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? StateRepository { get; set; }

    /// <summary>
    /// Calls whose work (multiply-adds) is below this run synchronously on the
    /// calling thread; larger ones are submitted to the native compute pool
    /// and awaited, so thread-pool threads never block on long kernels.
    /// </summary>
    /// <value>The default is 4,000,000 (about 0.1 ms of compute).</value>
    [Range(0L, long.MaxValue)]
    public long SyncWorkThreshold { get; set; } = 4_000_000;

    /// <summary>
    /// BLAKE3 inputs shorter than this many bytes are hashed in C#, where a
    /// call costs less than crossing into Rust (see docs/performance.md): the
    /// older spelling of <see cref="KernelOptions.ManagedBelowBytes"/> for
    /// <c>hash.blake3</c>, which wins when both are set.
    /// </summary>
    /// <value>The default is 0 (every input goes to the configured backend).</value>
    [Range(0, int.MaxValue)]
    public int HashManagedBelowBytes { get; set; }

    /// <summary>Admission limits and dynamic batching.</summary>
    [ValidateObjectMembers]
    public BatchingOptions Batching { get; set; } = new();

    /// <summary>Per-kernel switches by kernel name (backend, batching, caching).</summary>
    public Dictionary<string, KernelOptions> Kernels { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Bounds of the result cache.</summary>
    [ValidateObjectMembers]
    public CacheOptions Cache { get; set; } = new();

    /// <summary>Retries, circuit breaking and timeouts around backend calls.</summary>
    [ValidateObjectMembers]
    public ResilienceOptions Resilience { get; set; } = new();

    /// <summary>
    /// Whether the native library writes one JSON line per kernel call to
    /// stderr (kernel, the caller's trace id, status code, microseconds) in
    /// addition to its internal-error lines.
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool NativeCallLog { get; set; }

    /// <summary>
    /// Deadline of each kernel call, from admission: a call still queued when
    /// it passes is never run, a native call stops at the kernel's next check,
    /// a remote one carries it as <c>grpc-timeout</c> (unless
    /// <c>Tandem:Remote:CallDeadline</c> sets its own); each fails with
    /// DEADLINE_EXCEEDED naming this option. Null (set in code) means none,
    /// which lets one caller hold the backend for as long as its work takes.
    /// </summary>
    /// <value>The default is 30 s.</value>
    public TimeSpan? CallTimeout { get; set; } = DefaultCallTimeout;

    /// <summary>The library's default <see cref="CallTimeout"/>: 30 s.</summary>
    public static readonly TimeSpan DefaultCallTimeout = TimeSpan.FromSeconds(30);
}

/// <summary>Lookups of per-kernel options.</summary>
internal static class TandemOptionsExtensions
{
    public static KernelOptions? For(this TandemOptions options, string kernel) =>
        options.Kernels.TryGetValue(kernel, out var kernelOptions) ? kernelOptions : null;

    /// <summary>Inputs below this many bytes run on the managed twin (<see cref="KernelOptions.ManagedBelowBytes"/>).</summary>
    public static int ManagedBelowBytes(this TandemOptions options, string kernel) =>
        options.For(kernel)?.ManagedBelowBytes is > 0 and var below ? below
        : kernel == Internal.Contracts.KernelContracts.HashBlake3 ? options.HashManagedBelowBytes : 0;
}
