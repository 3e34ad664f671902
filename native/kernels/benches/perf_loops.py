#!/usr/bin/env python3
"""Splits the perf samples of one function among its loops, to see which
stage of a kernel takes the time and whether it ran vectorised.

    perf record -e cpu-clock -F 2000 -o /tmp/mc.data \\
        target/release/examples/montecarlo_timing 16000000
    python3 kernels/benches/perf_loops.py /tmp/mc.data \\
        target/release/examples/montecarlo_timing european::block_avx2

Each loop is a backward jump in the function's disassembly; a sample counts
for the innermost loop holding its address. Per loop it prints the share of
the function's samples, its size, how many scalar double operations it has
(`...sd`, a loop the compiler left scalar), a few telling instructions and
the source lines it comes from. cpu-clock is a software event, so this works
in virtual machines without hardware counters."""

import collections
import re
import subprocess
import sys

TELLING = ("vpmuludq", "vcvtsi2sd", "vcvtqq2pd", "vdivpd", "vdivsd", "vsqrtpd",
           "vsqrtsd", "vroundpd", "vroundsd", "vrndscalepd", "vfmadd231ps")


def main(data, binary, function):
    script = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,symoff"],
                            capture_output=True, text=True, check=True).stdout
    offsets = collections.Counter()
    for line in script.splitlines():
        m = re.search(r"^\s*[0-9a-f]+\s+(\S.*)\+0x([0-9a-f]+)$", line)
        if m and m.group(1).endswith(function):
            offsets[int(m.group(2), 16)] += 1
    if not offsets:
        sys.exit(f"no samples in a function ending in {function}")

    symbols = []
    for line in subprocess.run(["nm", "-C", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"^([0-9a-f]+) [tTwW] (.*)$", line)
        if m:
            symbols.append((int(m.group(1), 16), m.group(2)))
    start = next(address for address, name in symbols if name.endswith(function))
    end = min(address for address, _ in symbols if address > start)
    listing = subprocess.run(["objdump", "-d", "-l", "--no-show-raw-insn", f"--start-address={start:#x}",
                              f"--stop-address={end:#x}", binary], capture_output=True, text=True, check=True).stdout

    instructions, source = [], None
    for line in listing.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m:
            instructions.append((int(m.group(1), 16) - start, m.group(2), m.group(3), source))
            continue
        m = re.match(r"^(/\S+):(\d+)", line)
        if m:
            source = f"{m.group(1).rsplit('/', 1)[-1]}:{m.group(2)}"

    loops = set()
    for offset, op, args, _ in instructions:
        m = re.match(r"([0-9a-f]+)", args)
        if op.startswith("j") and m and start <= int(m.group(1), 16) <= start + offset:
            loops.add((int(m.group(1), 16) - start, offset))
    loops = sorted(loops, key=lambda r: r[1] - r[0])

    total = sum(offsets.values())
    per_loop = collections.Counter()
    for offset, count in offsets.items():
        per_loop[next((r for r in loops if r[0] <= offset <= r[1]), None)] += count
    print(f"{function}: {total} samples")
    for loop, count in per_loop.most_common():
        if loop is None:
            print(f"  {100 * count / total:5.1f}%  outside loops")
            continue
        body = [i for i in instructions if loop[0] <= i[0] <= loop[1]]
        ops = collections.Counter(i[1] for i in body)
        scalar = sum(n for op, n in ops.items()
                     if op.endswith("sd") and op not in ("vmovsd", "vbroadcastsd", "vmovq"))
        telling = ", ".join(f"{op}×{ops[op]}" for op in TELLING if ops[op])
        lines = ", ".join(line for line, _ in collections.Counter(i[3] for i in body if i[3]).most_common(3))
        print(f"  {100 * count / total:5.1f}%  loop {loop[0]:#x}-{loop[1]:#x}: {len(body)} instructions, "
              f"{scalar} scalar f64 ops; {telling} | {lines}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
