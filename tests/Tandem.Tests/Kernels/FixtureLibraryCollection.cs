namespace Tandem.Tests.Kernels;

/// <summary>
/// Tests that load the fixture library: its registration reads
/// TANDEM_FIXTURE_MODE, which the load tests set process-wide, so they never
/// run at the same time.
/// </summary>
[CollectionDefinition(Name)]
public sealed class FixtureLibraryCollection
{
    public const string Name = "fixture library";
}
