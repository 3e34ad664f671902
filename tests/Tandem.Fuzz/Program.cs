using System.Globalization;
using System.Security.Cryptography;
using CsCheck;
using Tandem.Fuzz;

// tandem-fuzz replay            every committed seed and regression input once
// tandem-fuzz smoke [seconds]   replay, then generated inputs per target (default 10 s)
// tandem-fuzz run [seconds]     the same, longer (default 300 s)
// tandem-fuzz afl <target>      one target under afl-fuzz, coverage-guided through
//                               SharpFuzz-instrumented Tandem assemblies
//                               (build/fuzz.sh dotnet-afl sets it up)
//
// Generated inputs are CsCheck samples: random bytes, and seeds mutated by
// flips, inserts, deletions and boundary values. A finding is shrunk by
// CsCheck and written to tests/Tandem.Fuzz/artifacts/<target>/; fix it and
// commit the input to tests/Tandem.Fuzz/regressions/<target>/.
IFuzzTarget[] targets = [new DescriptorTarget(), new NpyTarget(), new RawTarget()];
var mode = args.Length > 0 ? args[0] : "smoke";
if (mode == "afl")
{
    var chosen = targets.Single(t => t.Name == args[1]);
    // An exception escaping the action is a crash to afl-fuzz.
    SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        chosen.Run(copy.ToArray());
    });
    return 0;
}

var seconds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : mode == "run" ? 300 : 10;
var only = args.Length > 2 ? args[2] : null;
var root = FindRoot();
var failed = false;
foreach (var target in targets)
{
    if (only is not null && target.Name != only)
    {
        continue;
    }

    var seeds = Inputs(Path.Combine(root, "corpus", target.Name));
    var regressions = Inputs(Path.Combine(root, "regressions", target.Name));
    if (seeds.Count == 0)
    {
        Console.Error.WriteLine($"error: {target.Name} has no seed corpus under tests/Tandem.Fuzz/corpus/{target.Name}");
        failed = true;
        continue;
    }

    foreach (var (file, bytes) in seeds.Concat(regressions))
    {
        try
        {
            target.Run(bytes);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {target.Name} fails on committed input {file}: {e}");
            failed = true;
        }
    }

    Console.WriteLine($"fuzz {target.Name}: {seeds.Count + regressions.Count} committed input(s) replayed");
    if (mode == "replay" || failed)
    {
        continue;
    }

    byte[]? smallest = null;
    long runs = 0;
    try
    {
        Generator(seeds.Select(s => s.Bytes).ToArray()).Sample(
            input =>
            {
                Interlocked.Increment(ref runs);
                try
                {
                    target.Run(input);
                }
                catch
                {
                    lock (targets)
                    {
                        if (smallest is null || input.Length < smallest.Length)
                        {
                            smallest = input;
                        }
                    }

                    throw;
                }
            },
            time: seconds,
            threads: 1);
        Console.WriteLine($"fuzz {target.Name}: {seconds}s, {runs} generated input(s), no finding");
    }
    catch (Exception e)
    {
        failed = true;
        var artifacts = Path.Combine(root, "artifacts", target.Name);
        Directory.CreateDirectory(artifacts);
        var path = Path.Combine(artifacts, "crash-" + Convert.ToHexStringLower(SHA1.HashData(smallest ?? [])));
        File.WriteAllBytes(path, smallest ?? []);
        Console.Error.WriteLine($"error: {target.Name} failed; smallest input written to {path}\n{e.Message}");
    }
}

return failed ? 1 : 0;

// Random bytes, or a seed with up to eight mutations.
static Gen<byte[]> Generator(byte[][] seeds)
{
    var random = Gen.Byte.Array[0, 600];
    var mutated = Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[1, 8], Gen.Int.Array[8], Gen.Byte.Array[8], (i, n, where, what) => Mutate(seeds[i], n, where, what));
    return Gen.OneOf(random, mutated, mutated, mutated);
}

static byte[] Mutate(byte[] seed, int count, int[] where, byte[] what)
{
    ReadOnlySpan<byte> boundaries = [0x00, 0xff, 0x7f, 0x80, 0x01, (byte)'\'', (byte)',', (byte)')'];
    var bytes = new List<byte>(seed);
    for (var i = 0; i < count; i++)
    {
        var at = bytes.Count == 0 ? 0 : (int)((uint)where[i] % (uint)bytes.Count);
        switch ((where[i] >> 28) & 3)
        {
            case 0 when bytes.Count > 0:
                bytes[at] ^= (byte)(what[i] | 1);
                break;
            case 1:
                bytes.Insert(at, what[i]);
                break;
            case 2 when bytes.Count > 0:
                bytes.RemoveAt(at);
                break;
            default:
                if (bytes.Count > 0)
                {
                    bytes[at] = boundaries[what[i] % boundaries.Length];
                }

                break;
        }
    }

    return [.. bytes];
}

static List<(string File, byte[] Bytes)> Inputs(string dir) =>
    Directory.Exists(dir)
        ? [.. Directory.GetFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).Select(f => (f, File.ReadAllBytes(f)))]
        : [];

// tests/Tandem.Fuzz, found from the binary's folder upwards.
static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        var candidate = Path.Combine(dir.FullName, "tests", "Tandem.Fuzz");
        if (Directory.Exists(Path.Combine(candidate, "corpus")))
        {
            return candidate;
        }
    }

    throw new DirectoryNotFoundException("tests/Tandem.Fuzz/corpus was not found above " + AppContext.BaseDirectory);
}
