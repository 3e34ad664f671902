using Google.Protobuf;
using Tandem.Contracts.V1;
using Tandem.Generator;

// tandem-generate: the C# contracts and typed facades of a kernel library,
// generated from the descriptors the library itself publishes (DESIGN.md §2:
// no descriptor is written twice).
const string Usage = """
    usage: tandem-generate (--library PATH | --descriptors FILE) --namespace NS --class NAME [--access public|internal] --out DIR

      --library PATH      a kernel library (.so); its descriptors are read through its C ABI
      --descriptors FILE  a descriptor file an earlier run wrote (NAME.descriptors.json)
      --namespace NS      namespace of the generated code
      --class NAME        name of the generated static class (files NAME.g.cs and NAME.descriptors.json);
                          NAME.g.cs also holds the typed facades and their registration, AddNAME(),
                          which with --access public also loads the library (AddKernelLibrary)
      --access A          accessibility of the generated class: public (default) or internal
      --out DIR           where the two files are written (created if missing)
    """;

try
{
    var options = GeneratorOptions.Parse(args);
    if (options is null)
    {
        Console.Out.Write(Usage);
        return 0;
    }

    var set = options.LibraryPath is { } library ? LibraryReader.Describe(library) : ReadDescriptorFile(options.DescriptorsPath!);
    Directory.CreateDirectory(options.OutputDirectory);
    var code = ContractWriter.Write(set, options);
    var json = JsonFormatter.Default.Format(set).Replace("\r\n", "\n") + "\n";
    WriteIfChanged(Path.Combine(options.OutputDirectory, options.ClassName + ".g.cs"), code);
    WriteIfChanged(Path.Combine(options.OutputDirectory, options.ClassName + ".descriptors.json"), json);
    return 0;
}
catch (GeneratorException e)
{
    Console.Error.WriteLine($"tandem-generate: {e.Message}");
    Console.Error.WriteLine();
    Console.Error.Write(Usage);
    return 2;
}

static KernelSet ReadDescriptorFile(string path)
{
    string text;
    try
    {
        text = File.ReadAllText(path);
    }
    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
    {
        throw new GeneratorException($"cannot read descriptor file '{path}': {e.Message}");
    }

    try
    {
        return JsonParser.Default.Parse<KernelSet>(text);
    }
    catch (InvalidProtocolBufferException e)
    {
        throw new GeneratorException($"descriptor file '{path}' is not a tandem.v1.KernelSet in protobuf JSON: {e.Message}");
    }
}

// Leaves an unchanged file alone, so builds that watch it do not rerun.
static void WriteIfChanged(string path, string text)
{
    if (File.Exists(path) && File.ReadAllText(path) == text)
    {
        return;
    }

    File.WriteAllText(path, text);
}
