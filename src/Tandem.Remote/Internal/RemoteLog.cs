using Microsoft.Extensions.Logging;

namespace Tandem.Remote.Internal;

/// <summary>The Remote backend's log messages; event ids are stable.</summary>
internal static partial class RemoteLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Worker {Name} at {Address} joined routing (version {Version}, instance {InstanceId}, {States} states replayed)")]
    public static partial void WorkerJoined(ILogger logger, string name, string address, string? version, string? instanceId, int states);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Worker {Name} (pid {ProcessId}) exited with code {ExitCode}; restarting in {Delay}")]
    public static partial void WorkerCrashed(ILogger logger, string name, int processId, int exitCode, TimeSpan delay);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Worker {Name} failed to start: {Reason}")]
    public static partial void WorkerStartFailed(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "Worker {Name} (instance {InstanceId}) retired")]
    public static partial void WorkerRetired(ILogger logger, string name, string? instanceId);

    [LoggerMessage(EventId = 106, Level = LogLevel.Warning, Message = "Kernel {Kernel} is refused on the remote workers: {Difference}")]
    public static partial void KernelRefused(ILogger logger, string kernel, string difference);

    [LoggerMessage(EventId = 107, Level = LogLevel.Debug, Message = "Worker {Name}: {Line}")]
    public static partial void WorkerLine(ILogger logger, string name, string line);

    [LoggerMessage(EventId = 108, Level = LogLevel.Warning, Message = "Worker {Name}: {Line}")]
    public static partial void WorkerProblem(ILogger logger, string name, string line);

    [LoggerMessage(EventId = 109, Level = LogLevel.Error, Message = "Rolling upgrade to {Binary} requested by configuration failed: {Reason}")]
    public static partial void ConfiguredUpgradeFailed(ILogger logger, string? binary, string reason);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Worker {Name}: kernel calls use the fast path at {Socket} (at most {MaxInFlight} in flight)")]
    public static partial void FastPathConnected(ILogger logger, string name, string socket, int maxInFlight);

    [LoggerMessage(EventId = 111, Level = LogLevel.Warning, Message = "Worker {Name}: the fast path at {Socket} is not used ({Reason}); kernel calls keep gRPC")]
    public static partial void FastPathNotUsed(ILogger logger, string name, string socket, string reason);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Worker {Name}: the fast-path connection closed ({Reason}); kernel calls use gRPC until it reconnects")]
    public static partial void FastPathClosed(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "Rolling upgrade to {Binary} (build {BuildId}) finished")]
    public static partial void UpgradeFinished(ILogger logger, string binary, string buildId);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "Worker {Name} found by DNS ({Endpoint}) joined the pool")]
    public static partial void WorkerFoundDns(ILogger logger, string name, string endpoint);

    [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "Worker {Name} left the pool: {Endpoint} no longer resolves to it")]
    public static partial void WorkerLeftDns(ILogger logger, string name, string endpoint);

    [LoggerMessage(EventId = 115, Level = LogLevel.Warning, Message = "Discovery of {Endpoint}: {Problem}; resolved again at the next interval")]
    public static partial void DnsProblem(ILogger logger, string endpoint, string problem);

    [LoggerMessage(EventId = 116, Level = LogLevel.Information, Message = "TLS to workers: certificate files reloaded (trust {Trust}, client certificate {ClientCertificate}); new connections use them")]
    public static partial void TlsReloaded(ILogger logger, string trust, string clientCertificate);

    [LoggerMessage(EventId = 117, Level = LogLevel.Warning, Message = "TLS to workers: the changed certificate files are refused ({Problem}); the current ones stay")]
    public static partial void TlsReloadRefused(ILogger logger, string problem);

    [LoggerMessage(EventId = 118, Level = LogLevel.Information, Message = "Worker {Name} does not read this client's shared memory in {Directory} ({Reason}): its tensors travel inline")]
    public static partial void NoSharedMemory(ILogger logger, string name, string directory, string reason);
}
