using Tandem.Server.Api;
using Tandem.Server.Hosting;

namespace Tandem.Server.Admin;

/// <summary>
/// Admin operations that take a while (worker restart, rolling upgrade, hot
/// swap): each runs in the background under an id the caller can poll, and
/// the latest few show on the dashboard. One runs at a time; a second is
/// refused with 409 rather than queued behind it.
/// </summary>
internal sealed class AdminOperations(TimeProvider time, ILogger<AdminOperations> logger, IHostApplicationLifetime lifetime)
{
    private const int Kept = 20;
    private readonly LinkedList<Operation> _recent = new();
    private long _next;
    private Operation? _running;

    public IReadOnlyList<OperationResponse> Recent
    {
        get
        {
            lock (_recent)
            {
                return [.. _recent.Select(o => o.View)];
            }
        }
    }

    public OperationResponse? Find(string id)
    {
        lock (_recent)
        {
            return _recent.FirstOrDefault(o => o.Id == id)?.View;
        }
    }

    /// <summary>Starts <paramref name="work"/> as operation <paramref name="kind"/>; its message on success comes from the work.</summary>
    public OperationResponse Start(string kind, string description, Func<CancellationToken, Task<string>> work)
    {
        Operation operation;
        lock (_recent)
        {
            if (_running is { } running)
            {
                throw new TandemException(TandemStatusCode.FailedPrecondition, $"admin operation {running.Id} ({running.Kind}) is still running; wait for it (GET /admin/operations/{running.Id}) and try again");
            }

            operation = new Operation($"op-{Interlocked.Increment(ref _next)}", kind, description, time.GetUtcNow());
            _running = operation;
            _recent.AddFirst(operation);
            if (_recent.Count > Kept)
            {
                _recent.RemoveLast();
            }
        }

        ServerLog.AdminOperation(logger, operation.Id, kind, "started", description);
        _ = Task.Run(() => RunAsync(operation, work));
        return operation.View;
    }

    private async Task RunAsync(Operation operation, Func<CancellationToken, Task<string>> work)
    {
        string state;
        string message;
        try
        {
            message = await work(lifetime.ApplicationStopping);
            state = "succeeded";
        }
        catch (Exception e)
        {
            state = "failed";
            if (e is TandemException or InvalidOperationException or OperationCanceledException)
            {
                message = e.Message;
            }
            else
            {
                // Other exceptions may carry paths and type names: log them, show the id.
                var correlationId = Guid.NewGuid().ToString("N");
                ServerLog.AdminOperationCrashed(logger, operation.Id, operation.Kind, correlationId, e);
                message = $"the operation failed unexpectedly; the details are logged under correlation id {correlationId}";
            }
        }

        lock (_recent)
        {
            operation.Finish(state, message, time.GetUtcNow());
            _running = null;
        }

        ServerLog.AdminOperation(logger, operation.Id, operation.Kind, state, message);
    }

    private sealed class Operation(string id, string kind, string message, DateTimeOffset startedAt)
    {
        private string _state = "running";
        private string _message = message;
        private DateTimeOffset? _endedAt;

        public string Id { get; } = id;

        public string Kind { get; } = kind;

        public OperationResponse View => new(Id, Kind, _state, _message, startedAt, _endedAt);

        public void Finish(string state, string message, DateTimeOffset endedAt)
        {
            _state = state;
            _message = message;
            _endedAt = endedAt;
        }
    }
}
