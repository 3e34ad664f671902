using System.Net;
using System.Net.Sockets;
using Tandem.Remote.Internal.Pool;

namespace Tandem.Tests.Remote;

/// <summary>
/// A DNS answer the test changes (fault injection, as a Kubernetes headless
/// Service changes its records): <paramref name="name"/> resolves to the
/// addresses last set, any other name to NXDOMAIN.
/// </summary>
internal sealed class InjectedDnsAnswers(string name, params IPAddress[] initial) : IWorkerAddressResolver
{
    private IPAddress[] _current = initial;

    public void Set(params IPAddress[] addresses) => Volatile.Write(ref _current, addresses);

    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        host == name ? Task.FromResult(Volatile.Read(ref _current)) : Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound));
}
