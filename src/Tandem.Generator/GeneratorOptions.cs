namespace Tandem.Generator;

/// <summary>A refusal the generator explains to its caller (exit code 2).</summary>
internal sealed class GeneratorException(string message) : Exception(message);

/// <summary>The command line of tandem-generate.</summary>
internal sealed record GeneratorOptions(string? LibraryPath, string? DescriptorsPath, string Namespace, string ClassName, bool Public, string OutputDirectory)
{
    /// <summary>Parses the arguments; null for --help.</summary>
    public static GeneratorOptions? Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "--help" or "-h")
            {
                return null;
            }

            if (name is not ("--library" or "--descriptors" or "--namespace" or "--class" or "--access" or "--out"))
            {
                throw new GeneratorException($"unknown argument '{name}'");
            }

            if (i + 1 >= args.Length)
            {
                throw new GeneratorException($"{name} needs a value");
            }

            if (!values.TryAdd(name, args[++i]))
            {
                throw new GeneratorException($"{name} is given twice");
            }
        }

        values.TryGetValue("--library", out var library);
        values.TryGetValue("--descriptors", out var descriptors);
        if ((library is null) == (descriptors is null))
        {
            throw new GeneratorException("give exactly one of --library and --descriptors");
        }

        var ns = Required(values, "--namespace");
        var className = Required(values, "--class");
        if (!Identifier.IsValid(className))
        {
            throw new GeneratorException($"--class '{className}' is not a C# identifier");
        }

        foreach (var part in ns.Split('.'))
        {
            if (!Identifier.IsValid(part))
            {
                throw new GeneratorException($"--namespace '{ns}' is not a C# namespace");
            }
        }

        var access = values.GetValueOrDefault("--access", "public");
        if (access is not ("public" or "internal"))
        {
            throw new GeneratorException($"--access must be public or internal, got '{access}'");
        }

        return new GeneratorOptions(library, descriptors, ns, className, access == "public", Required(values, "--out"));
    }

    /// <summary>
    /// The file name of the kernel library the code is generated for: the
    /// file --library read, or, from --descriptors, the file cargo names the
    /// cdylib of <paramref name="libraryName"/> (<c>ewma-kernels</c> →
    /// <c>libewma_kernels.so</c>).
    /// </summary>
    public string LibraryFile(string libraryName) =>
        LibraryPath is { } path ? Path.GetFileName(path) : $"lib{libraryName.Replace('-', '_')}.so";

    /// <summary>
    /// The name <c>AddKernelLibrary</c> finds <see cref="LibraryFile"/> by
    /// (<c>libewma.so</c> → <c>ewma</c>), or null for libtandem.so, which
    /// every host loads already.
    /// </summary>
    public string? KernelLibraryName(string libraryName)
    {
        var file = LibraryFile(libraryName);
        var name = file.EndsWith(".so", StringComparison.Ordinal) ? file[..^3] : file;
        name = name.StartsWith("lib", StringComparison.Ordinal) && name.Length > 3 ? name[3..] : name;
        return name == "tandem" ? null : name;
    }

    private static string Required(Dictionary<string, string> values, string name) =>
        values.TryGetValue(name, out var value) && value.Length > 0 ? value : throw new GeneratorException($"{name} is required");
}
