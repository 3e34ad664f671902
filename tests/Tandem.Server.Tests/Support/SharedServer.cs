namespace Tandem.Server.Tests.Support;

/// <summary>
/// One in-memory server with default settings, shared by the tests of a
/// class (xunit class fixture); tests keep out of each other's way by giving
/// their collections unique names.
/// </summary>
public sealed class SharedServer : IDisposable
{
    private static int _next;

    public ServerFactory Factory { get; } = new();

    public HttpClient CreateClient() => Factory.CreateClient();

    /// <summary>A collection name no other test uses.</summary>
    public static string UniqueName(string prefix) => $"{prefix}-{Interlocked.Increment(ref _next)}";

    public void Dispose() => Factory.Dispose();
}
