namespace Tandem.Kernels;

/// <summary>
/// Calls any kernel the host knows, by name, without a facade: the call takes
/// the whole pipeline (validation against the contract, cache, queueing and
/// batching, deadlines, resilience, fallback to the managed twin, telemetry)
/// exactly like a facade's call. Resolve it from the service provider.
/// </summary>
public interface IKernelInvoker
{
    /// <summary>Every kernel contract the host knows (its own and the declared ones).</summary>
    IReadOnlyList<KernelContract> Kernels { get; }

    /// <summary>The contract of <paramref name="kernel"/>.</summary>
    /// <exception cref="TandemException">NOT_FOUND when the host knows no such kernel.</exception>
    KernelContract GetContract(string kernel);

    /// <summary>Runs one call; outputs are allocated from the contract's shapes.</summary>
    /// <exception cref="TandemException">NOT_FOUND for an unknown kernel; INVALID_ARGUMENT naming the tensor, parameter or symbol at fault; any failure of the backend.</exception>
    ValueTask<KernelResult> InvokeAsync(KernelRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs one typed call (what generated facades use): <paramref name="call"/>
    /// writes its inputs and parameters straight into the call and takes the
    /// outputs sized from <paramref name="contract"/>; nothing else is
    /// allocated on the way. Same pipeline as <see cref="InvokeAsync(KernelRequest, CancellationToken)"/>.
    /// </summary>
    /// <param name="contract">The kernel's contract, as <see cref="GetContract"/> returns it.</param>
    /// <param name="state">The state the kernel reads, or null when it reads none.</param>
    /// <param name="call">The call's inputs and parameters.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <exception cref="TandemException">INVALID_ARGUMENT naming the tensor, parameter or symbol at fault; any failure of the backend.</exception>
    ValueTask<TResult> InvokeAsync<TCall, TResult>(KernelContract contract, KernelState? state, TCall call, CancellationToken cancellationToken = default)
        where TCall : struct, IKernelCall<TResult>;

    /// <summary>Builds a state of <paramref name="kind"/> from its creation tensors (in the kind's order; <see cref="KernelTensor.Absent"/> for an omitted optional one), on the backend serving the kernels that read it.</summary>
    /// <exception cref="TandemException">NOT_FOUND for an unknown state kind; INVALID_ARGUMENT naming the tensor at fault.</exception>
    ValueTask<KernelState> CreateStateAsync(string kind, IReadOnlyList<KernelTensor> tensors, CancellationToken cancellationToken = default);

    /// <summary>Opens a stream of a kernel with the <c>streaming</c> flag.</summary>
    /// <exception cref="TandemException">NOT_FOUND for an unknown kernel; UNIMPLEMENTED when it does not stream.</exception>
    ValueTask<KernelStream> OpenStreamAsync(string kernel, CancellationToken cancellationToken = default);
}
