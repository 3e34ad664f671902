namespace Tandem.Server.Hosting;

/// <summary>Tandem.Server's log messages, with stable event ids (200–299).</summary>
internal static partial class ServerLog
{
    // Client errors are the caller's to fix: Debug, so a noisy client cannot flood the log.
    [LoggerMessage(EventId = 200, Level = LogLevel.Debug, Message = "{Method} {Path} answered {Status} {Code} (correlation id {CorrelationId}): {Detail}")]
    public static partial void Problem(ILogger logger, string method, string path, int status, string code, string correlationId, string detail);

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "Unexpected failure (correlation id {CorrelationId})")]
    public static partial void Unexpected(ILogger logger, string correlationId, Exception? exception);

    [LoggerMessage(EventId = 202, Level = LogLevel.Information, Message = "Collection {Name} created: {Count} × {Dimension} on {Backend}")]
    public static partial void CollectionCreated(ILogger logger, string name, int count, int dimension, BackendKind backend);

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Collection {Name} dropped")]
    public static partial void CollectionDropped(ILogger logger, string name);

    [LoggerMessage(EventId = 204, Level = LogLevel.Information, Message = "Collection {Name} moved from {From} to {To} after the similarity.topk backend changed")]
    public static partial void CollectionMoved(ILogger logger, string name, BackendKind from, BackendKind to);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning, Message = "Collection {Name} could not move to {To}; it stays on {From}")]
    public static partial void CollectionMoveFailed(ILogger logger, string name, BackendKind from, BackendKind to, Exception exception);

    [LoggerMessage(EventId = 206, Level = LogLevel.Warning, Message = "Admin call {Method} {Path} refused: {Reason}")]
    public static partial void AdminRefused(ILogger logger, string method, string path, string reason);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Admin operation {Id} ({Kind}) {State}: {Message}")]
    public static partial void AdminOperation(ILogger logger, string id, string kind, string state, string message);

    [LoggerMessage(EventId = 208, Level = LogLevel.Information, Message = "Kernel {Kernel} flags: backend {Backend}, acceleration {Acceleration}")]
    public static partial void FlagsChanged(ILogger logger, string kernel, string backend, bool acceleration);

    [LoggerMessage(EventId = 209, Level = LogLevel.Information, Message = "Demo load: {State} ({Concurrency} concurrent, at most {TargetPerSecond}/s against {BaseAddress})")]
    public static partial void DemoLoad(ILogger logger, string state, int concurrency, int targetPerSecond, string baseAddress);

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Demo setup failed; the service runs without the demo collection")]
    public static partial void DemoSetupFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 212, Level = LogLevel.Warning, Message = "{Method} {Path} answered {Status} {Code} (correlation id {CorrelationId}): {Detail}")]
    public static partial void ServerProblem(ILogger logger, string method, string path, int status, string code, string correlationId, string detail);

    [LoggerMessage(EventId = 213, Level = LogLevel.Error, Message = "Admin operation {Id} ({Kind}) failed unexpectedly (correlation id {CorrelationId})")]
    public static partial void AdminOperationCrashed(ILogger logger, string id, string kind, string correlationId, Exception exception);

    [LoggerMessage(EventId = 214, Level = LogLevel.Information, Message = "Collection {Name} loaded from the state repository (version {Version}): {Count} × {Dimension} on {Backend}")]
    public static partial void CollectionLoaded(ILogger logger, string name, long version, int count, int dimension, BackendKind backend);

    [LoggerMessage(EventId = 215, Level = LogLevel.Error, Message = "Collection {Name} version {Version} in the state repository could not be loaded; it is not served")]
    public static partial void CollectionLoadFailed(ILogger logger, string name, long version, Exception exception);

    [LoggerMessage(EventId = 216, Level = LogLevel.Information, Message = "Collection {Name} dropped: another server sharing the state repository dropped it")]
    public static partial void CollectionDroppedElsewhere(ILogger logger, string name);

    [LoggerMessage(EventId = 217, Level = LogLevel.Warning, Message = "Reading the state repository failed; the catalog tries again at the next interval")]
    public static partial void RepositorySyncFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 211, Level = LogLevel.Debug, Message = "Demo load request failed")]
    public static partial void DemoRequestFailed(ILogger logger, Exception exception);
}
