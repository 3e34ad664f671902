using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tandem.Remote.Internal.Supervision;

/// <summary>
/// A tandem-worker process started by this client: its listening address
/// (from its one stdout line), graceful stop (SIGTERM, grace, SIGKILL) and
/// the socket file it leaves behind.
/// </summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _socketPath;
    private bool _disposed;

    private WorkerProcess(Process process, string? socketPath)
    {
        _process = process;
        _socketPath = socketPath;
    }

    public int Id { get; private set; }

    public bool HasExited => _disposed || _process.HasExited;

    public int ExitCode => _disposed ? -1 : _process.ExitCode;

    public Task Exited { get; private set; } = Task.CompletedTask;

    /// <summary>Starts the binary; its address is known once <see cref="WaitListeningAsync"/> completes.</summary>
    public static WorkerProcess Start(string binary, RemoteOptions options, string socketDirectory, string slot, string? buildId, IReadOnlyList<string>? kernelLibraries = null, string? socketPath = null, ILogger? logger = null, string? token = null, string? stateRepository = null)
    {
        var info = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // Held open and never written: the worker drains when it closes,
            // so a supervisor that dies (even by SIGKILL) leaves no orphans.
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        string? socket = null;
        if (options.Transport == RemoteTransport.Tcp)
        {
            info.ArgumentList.Add("--listen");
            info.ArgumentList.Add("127.0.0.1:0");
        }
        else
        {
            socket = socketPath ?? Path.Combine(socketDirectory, $"{slot}-{Guid.NewGuid().ToString("N")[..8]}.sock");
            info.ArgumentList.Add("--socket");
            info.ArgumentList.Add(socket);
        }

        if (options.FastPath == RemoteFastPath.Off && options.Transport == RemoteTransport.UnixSocket)
        {
            info.ArgumentList.Add("--fast-path");
            info.ArgumentList.Add("off");
        }

        if (options.WorkerMaxConcurrency is { } concurrency)
        {
            info.ArgumentList.Add("--max-concurrency");
            info.ArgumentList.Add(concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        Flag(info, "--max-queue", options.WorkerMaxQueue);
        Flag(info, "--max-message-bytes", options.WorkerMaxMessageBytes);
        Flag(info, "--max-states", options.WorkerMaxStates);
        Flag(info, "--max-state-bytes", options.WorkerMaxStateBytes);
        Flag(info, "--max-regions", options.WorkerMaxRegions);
        Flag(info, "--max-connections", options.WorkerMaxConnections);
        Flag(info, "--max-streams-per-connection", options.WorkerMaxStreamsPerConnection);
        Flag(info, "--max-open-streams", options.WorkerMaxOpenStreams);
        if (options.WorkerStreamIdleTimeout is { } idle)
        {
            info.ArgumentList.Add("--stream-idle-timeout");
            info.ArgumentList.Add(idle.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture));
        }

        // The token goes through the environment: argv is visible to every user in /proc.
        // Without one, an inherited value is removed, so the worker requires only what the client sends.
        if (token is null)
        {
            info.Environment.Remove(Transport.WorkerTokens.EnvironmentVariable);
        }
        else
        {
            info.Environment[Transport.WorkerTokens.EnvironmentVariable] = token;
        }

        // Info lines (one per call) reach this client's log only at Debug
        // (event 107): a worker whose client would drop them does not write
        // them, so no call pays for a line nobody keeps. Decided at start.
        logger ??= NullLogger.Instance;
        if (!logger.IsEnabled(LogLevel.Debug))
        {
            info.ArgumentList.Add("--log-level");
            info.ArgumentList.Add("warn");
        }

        info.ArgumentList.Add("--grace");
        info.ArgumentList.Add(Math.Max(1, (int)Math.Ceiling(options.DrainGrace.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture));
        info.ArgumentList.Add("--supervised");
        foreach (var library in kernelLibraries ?? [.. options.KernelLibraries])
        {
            info.ArgumentList.Add("--kernels");
            // A name (ewma) is resolved as in process: next to the app, then under runtimes/<rid>/native.
            info.ArgumentList.Add(Tandem.Internal.Native.KernelLibraryLocator.Resolve(library, out _) ?? library);
        }

        if (!string.IsNullOrEmpty(stateRepository))
        {
            // Stored states are then created by name: the client keeps no copy to replay.
            info.ArgumentList.Add("--repository");
            info.ArgumentList.Add(stateRepository);
        }

        if (!string.IsNullOrEmpty(buildId))
        {
            info.ArgumentList.Add("--build-id");
            info.ArgumentList.Add(buildId);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process, socket);
        process.OutputDataReceived += (_, e) => worker.OnStdout(e.Data);
        // The worker's JSON logs: always drained so it never blocks on a full
        // pipe; warnings and errors (with their correlation ids) reach the log.
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                if (line.Contains("\"level\":\"error\"", StringComparison.Ordinal) || line.Contains("\"level\":\"warn\"", StringComparison.Ordinal))
                {
                    RemoteLog.WorkerProblem(logger, slot, line);
                }
                else
                {
                    RemoteLog.WorkerLine(logger, slot, line);
                }
            }
        };
        process.Start();
        worker.Id = process.Id;
        worker.Exited = process.WaitForExitAsync();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    private static void Flag(ProcessStartInfo info, string flag, long? value)
    {
        if (value is { } v)
        {
            info.ArgumentList.Add(flag);
            info.ArgumentList.Add(v.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The address it listens on: <c>unix:/path</c> or <c>http://host:port</c>.</summary>
    public async Task<string> WaitListeningAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var exited = Exited.ContinueWith(_ => "", CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        var first = await Task.WhenAny(_listening.Task, exited).WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        if (first != _listening.Task)
        {
            throw new InvalidOperationException($"worker exited with code {_process.ExitCode} before listening");
        }

        return await _listening.Task.ConfigureAwait(false);
    }

    private void OnStdout(string? line)
    {
        if (string.IsNullOrWhiteSpace(line) || _listening.Task.IsCompleted)
        {
            return;
        }

        try
        {
            using var json = JsonDocument.Parse(line);
            if (json.RootElement.TryGetProperty("event", out var e) && e.GetString() == "listening")
            {
                var address = json.RootElement.TryGetProperty("address", out var a) ? a.GetString() ?? "" : "";
                _listening.TrySetResult(Normalize(address));
            }
        }
        catch (JsonException)
        {
            // Not the listening line.
        }
    }

    private string Normalize(string address)
    {
        if (_socketPath is not null)
        {
            return Transport.WorkerChannels.UnixScheme + (address.StartsWith('/') ? address : _socketPath);
        }

        if (address.StartsWith("unix:", StringComparison.Ordinal) || address.StartsWith("http://", StringComparison.Ordinal))
        {
            return address;
        }

        return "http://" + address;
    }

    /// <summary>SIGTERM (the worker drains), then SIGKILL after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!HasExited)
        {
            Signals.Send(Id, Signals.Term);
            await WaitOrKillAsync(grace).ConfigureAwait(false);
        }

        DeleteSocket();
    }

    /// <summary>Waits for an exit already requested (Drain), killing it after <paramref name="grace"/>.</summary>
    public async Task WaitOrKillAsync(TimeSpan grace)
    {
        try
        {
            await Exited.WaitAsync(grace).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Kill();
            await Exited.ConfigureAwait(false);
        }

        DeleteSocket();
    }

    public void Kill()
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            _process.Kill();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        if (!_process.HasExited)
        {
            Kill();
            _process.WaitForExit(5000);
        }

        _disposed = true;
        DeleteSocket();
        _process.Dispose();
    }

    /// <summary>Deletes the sockets a killed worker could not remove: its gRPC socket and its fast path's next to it.</summary>
    private void DeleteSocket()
    {
        if (_socketPath is not null)
        {
            File.Delete(_socketPath);
            File.Delete(_socketPath + ".fast");
        }
    }
}
