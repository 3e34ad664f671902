namespace Tandem.Perf.Cli;

/// <summary>The text of <c>tandem-perf --help</c>.</summary>
internal static class Usage
{
    public const string Text = """
        tandem-perf: load any Tandem kernel and report latency, throughput and where the time goes.

        Usage:
          tandem-perf [run] --kernel NAME [options]     measure; writes results.csv, results.json and PNG plots
          tandem-perf plot DIR|results.json... --out DIR   plots of one or more runs merged (one series per run)
          tandem-perf report DIR|results.json... --doc FILE [--command TEXT]
                                                     regenerates the table between <!-- tandem-perf:begin -->
                                                     and <!-- tandem-perf:end --> in FILE (docs/performance.md)

        What to drive:
          --kernel NAME              the kernel, e.g. similarity.topk, montecarlo.european, hash.blake3, or one of --library's
          --backend LIST             managed, native, remote, http; several separated by ',' run one after another (default native)
          --library PATH             a kernel library of yours (.so built with tandem-sdk): loaded in process and on the workers
          --url URL                  http: the Tandem.Server base address, e.g. http://127.0.0.1:5080
          --collection NAME          http, similarity.topk: search this existing collection instead of uploading one
          --workers N                remote: supervised tandem-worker processes (default 2, 1 to 64)
          --worker-path PATH         remote: the tandem-worker binary (default $TANDEM_WORKER_PATH, else this checkout's build)
          --set KEY=VALUE            any Tandem option, e.g. --set Tandem:Batching:MaxBatchRows=64 (repeatable)

        Inputs (drawn from the kernel's descriptor):
          --shape SYM=N[,SYM=N...]   symbol sizes, e.g. --shape n=100000,dim=128,batch=1; unset: batch 1, an output
                                     symbol its same-named parameter (k) or min(limit, 32), any other 64
          --param NAME=VALUE         a parameter (default: its declared default), e.g. --param k=10 --param metric=cosine
          --values NAME=LO:HI[:int][,LO:HI...]
                                     value ranges of an input, per column of its last axis (default: the test kit's)
          --input-pool N             distinct drawn requests to rotate over (default 16, fewer when large; 256 MiB at most)
          --seed N                   seed of the draw (default 1)

        Load (one of):
          --concurrency RANGE        closed loop, N callers each sending its next request when the last returns;
                                     RANGE is N, START:END, START:END:STEP or START:END:xFACTOR (default 1:8:x2)
          --request-rate RANGE       open loop at R requests/s (same RANGE syntax); latency counts from the scheduled send
          --request-distribution D   constant (default) or poisson
          --request-intervals FILE   open loop replaying FILE: one interval in microseconds per line, looped

        Each step:
          --warmup-seconds S         sent, not measured (default 2)
          --measurement-seconds S    the measured window (default 5)
          --drain-seconds S          after the window, how long running requests may finish before they are
                                     cancelled and counted as unfinished (default 10)
          --max-outstanding N        most requests in flight, open or closed loop (default 1024, at most 65536)

        Output:
          --out DIR                  results.csv, results.json, latency-throughput.png, batch-sizes.png,
                                     queue-compute.png (default ./perf-results)
          --label TEXT               the run's name in plots (default the backend)
          --no-plots                 CSV and JSON only
          --progress auto|live|plain live table on a terminal, one line per step otherwise (default auto)

        Exit codes: 0 done, 1 the target failed (host did not start, server unreachable, first call failed), 2 bad input.
        """;
}
