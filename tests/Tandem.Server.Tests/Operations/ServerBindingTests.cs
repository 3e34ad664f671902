using Tandem.Server.Hosting;

namespace Tandem.Server.Tests.Operations;

/// <summary>Which listen URLs count as loopback-only, the decision AllowedHosts and the read-only guard follow.</summary>
public sealed class ServerBindingTests
{
    [Theory]
    [InlineData("http://127.0.0.1:5080")]
    [InlineData("http://localhost:5080")]
    [InlineData("http://[::1]:5080")]
    [InlineData("http://127.0.0.2:0")]
    [InlineData("http://unix:/tmp/tandem.sock")]
    [InlineData("http://127.0.0.1:5080;http://[::1]:5080")]
    public void Of_LoopbackOrUnixSocketOnly_IsLoopbackOnly(string urls) => Assert.True(ServerBinding.Of(urls).IsLoopbackOnly);

    [Theory]
    [InlineData("http://0.0.0.0:5080")]
    [InlineData("http://[::]:5080")]
    [InlineData("http://*:5080")]
    [InlineData("http://+:5080")]
    [InlineData("http://10.1.2.3:5080")]
    [InlineData("http://tandem.internal:5080")]
    [InlineData("http://127.0.0.1:5080;http://0.0.0.0:5081")]
    public void Of_AnyListenerOffLoopback_IsNotLoopbackOnly(string urls) => Assert.False(ServerBinding.Of(urls).IsLoopbackOnly);
}
