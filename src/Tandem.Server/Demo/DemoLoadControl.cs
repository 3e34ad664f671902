using Microsoft.Extensions.Options;
using Tandem.Server.Api;

namespace Tandem.Server.Demo;

/// <summary>The demo load generator's settings, changed from the dashboard; the generator follows each change at once.</summary>
internal sealed class DemoLoadControl
{
    private readonly object _gate = new();
    private LoadResponse _view;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DemoLoadControl(IOptions<ServerOptions> options)
    {
        var demo = options.Value.Demo;
        _view = new LoadResponse(demo.Enabled && demo.Load, demo.Concurrency, demo.TargetPerSecond);
    }

    public LoadResponse View
    {
        get
        {
            lock (_gate)
            {
                return _view;
            }
        }
    }

    /// <summary>Completes at the next change of the settings.</summary>
    public Task Changed
    {
        get
        {
            lock (_gate)
            {
                return _changed.Task;
            }
        }
    }

    public LoadResponse Set(bool? running, int? concurrency, int? targetPerSecond)
    {
        TaskCompletionSource changed;
        LoadResponse view;
        lock (_gate)
        {
            _view = new LoadResponse(running ?? _view.Running, concurrency ?? _view.Concurrency, targetPerSecond ?? _view.TargetPerSecond);
            view = _view;
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
        return view;
    }
}
