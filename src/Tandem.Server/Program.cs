using Tandem.Server.Hosting;

if (CommandLine.Expand(args) is not { } expanded)
{
    Console.WriteLine(CommandLine.Usage);
    return 0;
}

await ServerApp.Build(expanded).RunAsync();
return 0;

/// <summary>The entry point; public so WebApplicationFactory&lt;Program&gt; can host the service in tests.</summary>
public partial class Program;
