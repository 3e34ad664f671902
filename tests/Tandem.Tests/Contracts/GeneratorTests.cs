using System.Diagnostics;
using Tandem.Tests.Kernels;

namespace Tandem.Tests.Contracts;

/// <summary>
/// tandem-generate on a kernel library that is not Tandem's (the fixture
/// library), as a user runs it: the code it writes with --access public
/// compiles in a project that references only the public Tandem assembly,
/// with warnings (missing XML docs included) as errors.
/// </summary>
[Collection(FixtureLibraryCollection.Name)]
public sealed class GeneratorTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("tandem-generate-").FullName;

    [Fact]
    public async Task Generate_FixtureLibraryPublic_WritesFacadesThatCompileAgainstThePublicApi()
    {
        var generated = Path.Combine(_directory, "Generated");

        var (generateCode, generateOutput) = await RunAsync("dotnet", GeneratorPath(), "--library", Path.Combine(AppContext.BaseDirectory, "libtandem_fixture_kernels.so"), "--namespace", "Consumer.Fixture", "--class", "FixtureKernels", "--access", "public", "--out", generated);
        Assert.True(generateCode == 0, generateOutput);
        var code = await File.ReadAllTextAsync(Path.Combine(generated, "FixtureKernels.g.cs"));
        Assert.Contains("public sealed class FixtureScaleKernel", code);
        Assert.Contains("public readonly struct FixtureScaleResult", code);
        Assert.Contains("public sealed class FixtureLookupKernel", code);
        Assert.Contains("public sealed class FixtureTableStateKind", code);
        Assert.Contains("OpenAsync(", code);
        Assert.Contains("public static global::Microsoft.Extensions.DependencyInjection.IServiceCollection AddFixtureKernels(this global::Microsoft.Extensions.DependencyInjection.IServiceCollection services, string? library = \"tandem_fixture_kernels\")", code);
        Assert.Contains("TandemServiceCollectionExtensions.AddKernelLibrary(services, library);", code);
        Assert.Contains("public const string LibraryFile = \"libtandem_fixture_kernels.so\";", code);
        Assert.Contains("Parameter 'factor': a float in [-1000000.0, 1000000.0]; default 2.0.", code);

        await File.WriteAllTextAsync(Path.Combine(_directory, "Consumer.csproj"), Project());
        await File.WriteAllTextAsync(Path.Combine(_directory, "Usage.cs"), Usage);
        var (buildCode, buildOutput) = await RunAsync("dotnet", "build", Path.Combine(_directory, "Consumer.csproj"), "-c", "Release", "-nologo", "-v", "quiet");

        Assert.True(buildCode == 0, buildOutput);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    // Calls every generated facade the way a user would, so the test also
    // proves the signatures are usable (named arguments, defaults, results).
    private const string Usage = """
        using Consumer.Fixture;
        using Microsoft.Extensions.DependencyInjection;
        using Tandem.Kernels;

        namespace Consumer;

        /// <summary>Uses the generated facades.</summary>
        public static class Usage
        {
            /// <summary>One call of each.</summary>
            public static async System.Threading.Tasks.Task<double> RunAsync(IKernelInvoker invoker, IServiceCollection services)
            {
                services.AddFixtureKernels();
                services.AddFixtureKernels(library: null);
                services.AddFixtureKernels(FixtureKernels.LibraryFile);
                FixtureScaleResult scaled = await new FixtureScaleKernel(invoker).InvokeAsync(new double[] { 1, 2 }, factor: 3.0);
                using KernelState table = await new FixtureTableStateKind(invoker).CreateAsync(new double[] { 5, 6 });
                FixtureLookupResult looked = await new FixtureLookupKernel(invoker).InvokeAsync(table, new long[] { 1 });
                var bytesum = new FixtureBytesumKernel(invoker);
                FixtureBytesumResult sum = await bytesum.InvokeAsync(new byte[] { 1, 2 });
                await using KernelStream stream = await bytesum.OpenAsync();
                return scaled.Y.Span[0] + looked.Values.Span[0] + sum.Sum.Length + scaled.Batch + (int)scaled.Backend;
            }
        }
        """;

    private static string Project()
    {
        static string Reference(string name) => $"""    <Reference Include="{Path.Combine(AppContext.BaseDirectory, name + ".dll")}" />""";
        return $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <GenerateDocumentationFile>true</GenerateDocumentationFile>
              </PropertyGroup>
              <ItemGroup>
            {Reference("Tandem")}
            {Reference("Microsoft.Extensions.DependencyInjection.Abstractions")}
              </ItemGroup>
            </Project>
            """;
    }

    /// <summary>The generator built next to these tests (same configuration).</summary>
    private static string GeneratorPath()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        var configuration = directory.Parent!.Name;
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Tandem.slnx")))
        {
            directory = directory.Parent;
        }

        Assert.NotNull(directory);
        var path = Path.Combine(directory.FullName, "src", "Tandem.Generator", "bin", configuration, "net10.0", "tandem-generate.dll");
        Assert.True(File.Exists(path), $"{path} is missing; build Tandem.slnx");
        return path;
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("TANDEM_FIXTURE_MODE");
        start.Environment.Remove("TANDEM_TEST_KERNELS");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }
}
