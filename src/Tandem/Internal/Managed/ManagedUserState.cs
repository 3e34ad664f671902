using Tandem.Internal.Kernels;

namespace Tandem.Internal.Managed;

/// <summary>A state built by a user's <see cref="Kernels.ManagedStateKind"/>.</summary>
internal sealed class ManagedUserState(object value, long sizeBytes) : IKernelState
{
    public object Value => value;

    public BackendKind Backend => BackendKind.Managed;

    public long SizeBytes => sizeBytes;

    public void Dispose() => (value as IDisposable)?.Dispose();
}
