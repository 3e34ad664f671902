namespace Tandem;

/// <summary>
/// Which backend serves each kernel now, for readiness checks and operator
/// views. The answer follows the current options, so it changes when a
/// kernel's backend is switched or the native library is hot-swapped.
/// </summary>
public interface IKernelRouting
{
    /// <summary>One route per kernel this build knows, in a stable order.</summary>
    IReadOnlyList<KernelRoute> Routes { get; }
}

/// <summary>How one kernel's new calls are routed.</summary>
/// <param name="Kernel">The kernel's name, such as <c>similarity.topk</c>.</param>
/// <param name="Configured">The backend the options ask for (the kernel's own setting, else the global one).</param>
/// <param name="Serving">The backend new calls run on; null when none can serve (fallback disabled and the configured one refused).</param>
/// <param name="Reason">Why <paramref name="Serving"/> differs from <paramref name="Configured"/>, or null.</param>
public sealed record KernelRoute(string Kernel, BackendKind Configured, BackendKind? Serving, string? Reason);
