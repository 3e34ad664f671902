#!/usr/bin/env python3
"""Top-k by dot product on numpy's BLAS: the baseline for TopKBenchmarks.

Same shapes as bench/Tandem.Benchmarks/TopKBenchmarks.cs: 200,000 float32
vectors of dimension 384, k = 10, one query (sgemv, ``X @ q``) and a batch of
64 (sgemm, ``Q @ X.T``). Each case is timed with and without the top-k
selection (argpartition, then sorting the k best by score, ties to the lower
id, as Tandem orders them). Collection creation is not timed.

Run it as bench/run.sh does:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/baseline/openblas_topk.py

Why those variables are unset: on some processors this environment sets
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE to keep older OpenBLAS builds correct;
they force a current OpenBLAS onto a slower kernel. Unset them for this
command only, never in tests or CI. /usr/bin/python3 is Debian's Python,
whose numpy (python3-numpy) uses the system BLAS; the pyenv python3 on PATH
has no numpy.
"""

import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="vectors in the collection")
    parser.add_argument("--dim", type=int, default=384, help="components per vector")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64, help="queries in the batched case")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per case; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per case before timing")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args()


def loaded_blas_libraries():
    """Paths of the BLAS shared libraries mapped into this process."""
    paths = set()
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if "blas" in name or "mkl_rt" in name or "blis" in name:
                paths.add(path)
    return sorted(paths)


def describe_blas():
    """Which BLAS numpy calls and with how many threads, as a dict."""
    try:
        from threadpoolctl import threadpool_info  # not packaged everywhere; used when present

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            pool = pools[0]
            return {
                "library": pool.get("internal_api"),
                "path": pool.get("filepath"),
                "version": pool.get("version"),
                "threads": pool.get("num_threads"),
                "kernel": pool.get("architecture"),
                "source": "threadpoolctl",
            }
    except ImportError:
        pass

    # Without threadpoolctl, ask the mapped library itself, as threadpoolctl does.
    for path in loaded_blas_libraries():
        library = ctypes.CDLL(path)
        if hasattr(library, "openblas_get_config"):
            library.openblas_get_config.restype = ctypes.c_char_p
            library.openblas_get_corename.restype = ctypes.c_char_p
            return {
                "library": "openblas",
                "path": path,
                "version": library.openblas_get_config().decode(),
                "threads": library.openblas_get_num_threads(),
                "kernel": library.openblas_get_corename().decode(),
                "source": "ctypes",
            }
        if "/blas/libblas.so" in path:
            # Debian's reference BLAS (libblas3): unoptimised and single-threaded.
            return {"library": "reference (netlib)", "path": path, "version": None, "threads": 1, "kernel": None, "source": "ctypes"}

    config = getattr(np.__config__, "blas_opt_info", None)
    return {"library": "unknown", "path": None, "version": None, "threads": None, "kernel": None, "source": f"np.show_config: {config}"}


def time_ms(function, repeats, warmup):
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        function()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples), "runs": repeats}


def top_k(scores, k):
    """The k highest scores of one row, best first, ties to the lower id.

    A tie at the k-th place may keep either id (argpartition picks one); the
    Gaussian benchmark data has none.
    """
    candidates = np.argpartition(scores, -k)[-k:]
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order], scores[candidates[order]]


def top_k_rows(scores, k):
    """top_k for each row of a (batch, count) score matrix."""
    candidates = np.argpartition(scores, -k, axis=1)[:, -k:]
    best = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -best), axis=1)
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(best, order, axis=1)


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((args.count, args.dim), dtype=np.float32)
    queries = rng.standard_normal((args.batch, args.dim), dtype=np.float32)
    query = np.ascontiguousarray(queries[0])

    blas = describe_blas()
    print(f"numpy {np.__version__}, Python {platform.python_version()} ({sys.executable})")
    print(f"BLAS: {blas['library']} {blas['version'] or ''} at {blas['path']}; threads={blas['threads']}; kernel={blas['kernel']} (via {blas['source']})")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if variable in os.environ:
            print(f"note: {variable}={os.environ[variable]} is set")
    if blas["library"] != "openblas":
        print("warning: numpy is not using OpenBLAS, so this is not the intended baseline; "
              "install Debian's libopenblas0-pthread, which becomes the system libblas.so.3")
    print(f"shapes: {args.count} x {args.dim} float32, k={args.k}, batch={args.batch}; "
          f"median of {args.repeats} runs after {args.warmup} warm-up runs")

    cases = {
        "sgemv 1 query, scores only": lambda: vectors @ query,
        "sgemv 1 query + top-k": lambda: top_k(vectors @ query, args.k),
        f"sgemm {args.batch} queries, scores only": lambda: queries @ vectors.T,
        f"sgemm {args.batch} queries + top-k": lambda: top_k_rows(queries @ vectors.T, args.k),
    }
    results = {}
    for name, function in cases.items():
        results[name] = time_ms(function, args.repeats, args.warmup)
        timing = results[name]
        print(f"{name:<36} median {timing['median_ms']:10.3f} ms   min {timing['min_ms']:10.3f} ms   max {timing['max_ms']:10.3f} ms")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as output:
            json.dump({"numpy": np.__version__, "blas": blas, "arguments": vars(args), "results": results}, output, indent=2)


if __name__ == "__main__":
    main()
