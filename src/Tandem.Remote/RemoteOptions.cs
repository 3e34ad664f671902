using System.ComponentModel.DataAnnotations;

namespace Tandem.Remote;

/// <summary>How the client reaches locally supervised workers.</summary>
public enum RemoteTransport
{
    /// <summary>h2c over a Unix domain socket per worker (the default).</summary>
    UnixSocket = 0,

    /// <summary>h2c over TCP on 127.0.0.1.</summary>
    Tcp = 1,
}

/// <summary>Whether kernel calls to workers on this host use the local fast path.</summary>
public enum RemoteFastPath
{
    /// <summary>
    /// Workers on a Unix socket that offer the fast path (in <c>Describe</c>)
    /// get their kernel calls over it; workers on TCP, and workers that offer
    /// none, keep gRPC (the default).
    /// </summary>
    Auto = 0,

    /// <summary>Every call uses gRPC; supervised workers are started without the fast path (<c>--fast-path off</c>).</summary>
    Off = 1,
}

/// <summary>
/// TLS to workers on other hosts. <c>https://host:port</c> endpoints always
/// use it, <c>dns:///name:port</c> endpoints when <see cref="Enabled"/>, and
/// <c>http://</c> and <c>unix:</c> endpoints never. The files are PEM and are
/// read again when they change (checked before each new connection), so
/// certificates rotate without a restart.
/// </summary>
public sealed class RemoteTlsOptions
{
    /// <summary>Whether <c>dns:///</c> endpoints are reached over TLS.</summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool Enabled { get; set; }

    /// <summary>The CA certificates a worker's certificate must chain to; null trusts the system's store.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? CaCertificateFile { get; set; }

    /// <summary>The client certificate (chain, leaf first) shown to workers started with <c>--tls-client-ca</c>; needs <see cref="ClientKeyFile"/>.</summary>
    /// <value>The default is <see langword="null"/>: none.</value>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The client certificate's private key (PEM, not encrypted).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? ClientKeyFile { get; set; }

    /// <summary>
    /// The name a worker's certificate must carry; null means the endpoint's
    /// host (for <c>dns:///name:port</c> the name, not the addresses it
    /// resolves to: a headless Service's certificate names the Service).
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? ServerName { get; set; }
}

/// <summary>
/// Options of <c>AddTandemRemote</c>; validated at startup. With no
/// <see cref="Endpoints"/> the client supervises its own dedicated workers
/// (shared-nothing); with endpoints it connects to workers managed elsewhere
/// (pooled).
/// </summary>
public sealed class RemoteOptions
{
    /// <summary>Configuration section conventionally bound to these options.</summary>
    public const string SectionName = "Tandem:Remote";

    /// <summary>
    /// Path of the tandem-worker binary; null means <c>$TANDEM_WORKER_PATH</c>,
    /// else <c>tandem-worker</c> next to the application. Changed at run time
    /// (bound configuration), every supervised worker is replaced by one
    /// running the new binary, as <see cref="IWorkerPoolAdmin.RollingUpgradeAsync"/> does.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? WorkerPath { get; set; }

    /// <summary>Workers this client starts and supervises (ignored when <see cref="Endpoints"/> is set).</summary>
    /// <value>The default is 2.</value>
    [Range(1, 64)]
    public int WorkerCount { get; set; } = 2;

    /// <summary>Directory of the workers' sockets; null means a new private directory under the temp path, deleted on dispose.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? SocketDirectory { get; set; }

    /// <summary>Transport to supervised workers.</summary>
    /// <value>The default is <see cref="RemoteTransport.UnixSocket"/>.</value>
    [EnumDataType(typeof(RemoteTransport))]
    public RemoteTransport Transport { get; set; } = RemoteTransport.UnixSocket;

    /// <summary>
    /// The local fast path: kernel calls (<c>Invoke</c>) to a worker on a Unix
    /// socket travel as length-prefixed protobuf frames on a second socket the
    /// worker offers next to its gRPC one, with the same codes, deadlines,
    /// cancellation and shared memory, at a fraction of gRPC's round trip
    /// (docs/performance.md). States, regions, streams and health stay on
    /// gRPC. Negotiated per worker at connect; read at start.
    /// </summary>
    /// <value>The default is <see cref="RemoteFastPath.Auto"/>.</value>
    [EnumDataType(typeof(RemoteFastPath))]
    public RemoteFastPath FastPath { get; set; } = RemoteFastPath.Auto;

    /// <summary>
    /// Externally managed workers (pooled topology), as <c>unix:/path/to.sock</c>,
    /// <c>http://host:port</c>, <c>https://host:port</c> (TLS, <see cref="Tls"/>), or <c>dns:///name:port</c>: every address the
    /// name resolves to is a worker, re-resolved every
    /// <see cref="DnsRefreshInterval"/> (a Kubernetes headless Service).
    /// When set, no worker is started.
    /// </summary>
    /// <value>The default is empty.</value>
    public IList<string> Endpoints { get; set; } = [];

    /// <summary>TLS to workers on other hosts (<c>https://</c> endpoints, and <c>dns:///</c> ones when enabled). Read at start; its files are reloaded when they change.</summary>
    /// <value>The default is TLS off for <c>dns:///</c> endpoints, trusting the system's CAs for <c>https://</c> ones.</value>
    public RemoteTlsOptions Tls { get; set; } = new();

    /// <summary>How often a <c>dns:///</c> endpoint is resolved again (sooner while one of its workers is ejected): workers appear and leave within it.</summary>
    /// <value>The default is 5 seconds.</value>
    public TimeSpan DnsRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Tensors of at least this many bytes travel through shared memory instead of inline in the message.</summary>
    /// <value>The default is 65,536 (64 KiB).</value>
    [Range(1, int.MaxValue)]
    public int SharedMemoryThresholdBytes { get; set; } = 64 * 1024;

    /// <summary>Directory of the shared-memory files (a tmpfs the workers can read).</summary>
    /// <value>The default is <c>/dev/shm</c>.</value>
    public string SharedMemoryDirectory { get; set; } = "/dev/shm";

    /// <summary>Idle shared-memory regions kept for reuse; more are deleted when returned.</summary>
    /// <value>The default is 8.</value>
    [Range(0, 1024)]
    public int SharedMemoryPoolSize { get; set; } = 8;

    /// <summary>Deadline of each attempt on a worker; null follows <see cref="TandemOptions.CallTimeout"/> (null there: none).</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public TimeSpan? CallDeadline { get; set; }

    /// <summary>Further attempts of an idempotent call on another worker after UNAVAILABLE, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED.</summary>
    /// <value>The default is 2.</value>
    [Range(0, 8)]
    public int RetriesOnOtherWorkers { get; set; } = 2;

    /// <summary>Consecutive transport failures, UNAVAILABLE or DEADLINE_EXCEEDED after which a worker leaves routing.</summary>
    /// <value>The default is 3.</value>
    [Range(1, 1000)]
    public int EjectionConsecutiveFailures { get; set; } = 3;

    /// <summary>How often an ejected worker is probed; it rejoins when its health says SERVING.</summary>
    /// <value>The default is 2 seconds.</value>
    public TimeSpan EjectionProbeInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>First delay before restarting a crashed worker; doubles per consecutive crash.</summary>
    /// <value>The default is 200 ms.</value>
    public TimeSpan RestartBackoff { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Longest delay between restarts of a crashing worker.</summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan MaxRestartBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a started worker may take to listen and report SERVING.</summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a draining worker may finish in-flight calls before it is killed.</summary>
    /// <value>The default is 10 seconds.</value>
    public TimeSpan DrainGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The worker's <c>--max-concurrency</c>; null keeps the worker's default.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, 4096)]
    public int? WorkerMaxConcurrency { get; set; }

    /// <summary>The worker's <c>--max-queue</c>; null keeps the worker's default.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(0, 1_000_000)]
    public int? WorkerMaxQueue { get; set; }

    /// <summary>
    /// The worker's <c>--max-message-bytes</c>: the largest gRPC message it
    /// accepts (an inline tensor must fit in one); null keeps the worker's
    /// default of 64 MiB.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1024L, 1L << 32)]
    public long? WorkerMaxMessageBytes { get; set; }

    /// <summary>The worker's <c>--max-states</c> (states held at once); null keeps the worker's default of 4,096.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, 1_000_000)]
    public int? WorkerMaxStates { get; set; }

    /// <summary>The worker's <c>--max-state-bytes</c> (bytes of states held at once); null keeps the worker's default of 8 GiB.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1L, long.MaxValue)]
    public long? WorkerMaxStateBytes { get; set; }

    /// <summary>The worker's <c>--max-regions</c> (shared-memory regions registered at once); null keeps the worker's default of 256.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, 1_000_000)]
    public int? WorkerMaxRegions { get; set; }

    /// <summary>The worker's <c>--max-connections</c> (client connections open at once); null keeps the worker's default of 1,024.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, 1_000_000)]
    public int? WorkerMaxConnections { get; set; }

    /// <summary>The worker's <c>--max-streams-per-connection</c> (concurrent requests on one HTTP/2 connection); null keeps the worker's default of 256.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, 1_000_000)]
    public int? WorkerMaxStreamsPerConnection { get; set; }

    /// <summary>The worker's <c>--max-open-streams</c> (streaming calls open at once); null keeps the worker's default of 64.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    [Range(1, 1_000_000)]
    public int? WorkerMaxOpenStreams { get; set; }

    /// <summary>
    /// The worker's <c>--stream-idle-timeout</c>: how long it waits for a
    /// call's next message (a stream's next chunk) before ending the call with
    /// DEADLINE_EXCEEDED; null keeps the worker's default of 30 seconds.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public TimeSpan? WorkerStreamIdleTimeout { get; set; }

    /// <summary>
    /// The shared token sent as <c>authorization: Bearer</c> metadata on every
    /// call; workers listening on TCP require it. Supervised workers receive it
    /// through their environment (<c>TANDEM_WORKER_TOKEN</c>), never on their
    /// command line. Null means <see cref="WorkerTokenFile"/>; when both are
    /// null, supervised TCP workers get a random token of this client's and
    /// endpoints get none. 16 to 1,024 visible ASCII characters; never logged.
    /// Read at start.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? WorkerToken { get; set; }

    /// <summary>
    /// A file holding <see cref="WorkerToken"/> (surrounding whitespace
    /// ignored), readable by its owner only (<c>chmod 600</c>): the same file a
    /// worker's <c>--token-file</c> reads. Exclusive with <see cref="WorkerToken"/>.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? WorkerTokenFile { get; set; }

    /// <summary>
    /// The workers' <c>--build-id</c> (shown in their version); null uses none.
    /// Changed at run time (bound configuration), every supervised worker is
    /// replaced by one started with the new id.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public string? BuildId { get; set; }

    /// <summary>
    /// Kernel libraries (cdylibs built with tandem-sdk) every supervised worker
    /// serves next to its built-in kernels, each passed as <c>--kernels PATH</c>:
    /// a path, or a name found as <see cref="TandemOptions.KernelLibraries"/> finds it
    /// (<c>ewma</c> for <c>libewma.so</c> next to the app or under <c>runtimes/&lt;rid&gt;/native</c>).
    /// The worker checks each at start (ABI, descriptor hashes, unique names)
    /// and refuses to start on a bad one. Changed at run time (bound
    /// configuration), the workers are rolled onto the new set.
    /// </summary>
    /// <value>The default is empty: only the built-in kernels.</value>
    public IList<string> KernelLibraries { get; set; } = [];
}
