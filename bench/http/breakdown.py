#!/usr/bin/python3
"""Latency breakdown for bench/http/run.sh, from Prometheus histogram diffs.

  breakdown.py run CONFIG BEFORE AFTER CLIENT_OUTPUT LOADAVG_BEFORE LOADAVG_AFTER > run.json
      One run: the difference of two /metrics scrapes (BEFORE may be
      /dev/null, as for the in-process baseline's own histogram file),
      p50 and p99 of HTTP server time, Tandem call, queue and compute time
      by linear interpolation inside buckets (as PromQL's
      histogram_quantile), and the client's figures: wrk's result-json line
      (bench/http/search.lua) or the inprocess-search mode's output.
  breakdown.py summary RESULTS_DIR > summary.md
      Medians over every run-*.json in RESULTS_DIR, per configuration,
      with ratios to the in-process baseline.
"""
import glob
import json
import math
import os
import re
import statistics
import sys

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SEARCH_ROUTE = "/collections/{name}/search"
# metric family -> labels a series must carry to count
FAMILIES = {
    "http": ("http_server_request_duration_seconds", {"http_route": SEARCH_ROUTE}),
    "call": ("tandem_call_duration_seconds", {"kernel": "similarity.topk"}),
    "queue": ("tandem_queue_duration_seconds", {"kernel": "similarity.topk"}),
    "compute": ("tandem_compute_duration_seconds", {"kernel": "similarity.topk"}),
    "batch": ("tandem_batch_size", {"kernel": "similarity.topk"}),
}


def parse(path):
    """{family: {"buckets": {le: count}, "sum": s, "count": n}, "http_status": {code: n}} summed over matching series."""
    out = {key: {"buckets": {}, "sum": 0.0, "count": 0.0} for key in FAMILIES}
    out["http_status"] = {}
    with open(path) as f:
        for raw in f:
            m = LINE.match(raw.strip())
            if not m or raw.startswith("#"):
                continue
            name, labels, value = m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))
            for key, (family, required) in FAMILIES.items():
                if not name.startswith(family + "_"):
                    continue
                # The in-process file carries no labels; server series must match.
                if any(k in labels and labels[k] != v for k, v in required.items()) or (
                        key == "http" and labels.get("http_route") != SEARCH_ROUTE):
                    continue
                suffix = name[len(family) + 1:]
                if suffix == "bucket":
                    le = math.inf if labels["le"] == "+Inf" else float(labels["le"])
                    out[key]["buckets"][le] = out[key]["buckets"].get(le, 0.0) + value
                elif suffix in ("sum", "count"):
                    out[key][suffix] += value
                    if key == "http" and suffix == "count":
                        code = labels.get("http_response_status_code", "?")
                        out["http_status"][code] = out["http_status"].get(code, 0) + value
    return out


def diff(before, after):
    result = {}
    for key in FAMILIES:
        b, a = before[key], after[key]
        result[key] = {
            "buckets": {le: a["buckets"][le] - b["buckets"].get(le, 0.0) for le in a["buckets"]},
            "sum": a["sum"] - b["sum"],
            "count": a["count"] - b["count"],
        }
    result["http_status"] = {c: n - before["http_status"].get(c, 0) for c, n in after["http_status"].items()
                             if n - before["http_status"].get(c, 0) > 0}
    return result


def quantile(q, histogram):
    """histogram_quantile: linear inside the bucket holding rank q * count; None when empty."""
    bounds = sorted(histogram["buckets"])
    total = histogram["buckets"].get(math.inf, histogram["count"])
    if not bounds or total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        cumulative = histogram["buckets"][le]
        if cumulative >= rank:
            if math.isinf(le):
                return lower  # above the last finite bound: report that bound
            if cumulative == below:
                return le
            return lower + (le - lower) * (rank - below) / (cumulative - below)
        lower, below = le, cumulative
    return lower


def server_figures(before_path, after_path):
    d = diff(parse(before_path), parse(after_path))
    report = {"count": {}, "mean_ms": {}, "p50_ms": {}, "p99_ms": {}}
    for key in ("http", "call", "queue", "compute"):
        h = d[key]
        report["count"][key] = h["count"]
        report["mean_ms"][key] = h["sum"] / h["count"] * 1e3 if h["count"] else None
        for q, name in ((0.5, "p50_ms"), (0.99, "p99_ms")):
            v = quantile(q, h)
            report[name][key] = v * 1e3 if v is not None else None
    report["batches"] = d["batch"]["count"]
    report["mean_batch_rows"] = d["batch"]["sum"] / d["batch"]["count"] if d["batch"]["count"] else None
    report["http_status"] = d["http_status"]
    return report


def client_figures(path):
    """wrk's result-json line, or the inprocess-search summary lines, as one shape."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^result-json (.*)$", text, re.M)
    if m:
        w = json.loads(m.group(1))
        return {"requests": w["requests"], "requests_per_s": w["requests_per_s"],
                "p50_ms": w["latency_ms"]["p50"], "p99_ms": w["latency_ms"]["p99"],
                "non2xx": w["non2xx"], "statuses": w["statuses"],
                "socket_errors": sum(v for k, v in w["errors"].items() if k != "status")}
    calls = re.search(r"(\d+) calls, (\d+) failed, (\d+) requests/s", text)
    latency = re.search(r"p50 ([\d.]+) p90 [\d.]+ p99 ([\d.]+)", text)
    return {"requests": int(calls.group(1)), "requests_per_s": float(calls.group(3)),
            "p50_ms": float(latency.group(1)), "p99_ms": float(latency.group(2)),
            "non2xx": int(calls.group(2)), "socket_errors": 0}


def run(config, before_path, after_path, client_path, load_before, load_after):
    return {"config": config, "loadavg_before": load_before, "loadavg_after": load_after,
            "client": client_figures(client_path), "server": server_figures(before_path, after_path)}


def fmt(value, digits=2):
    return "–" if value is None else f"{value:,.{digits}f}"


def summary(results):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results, "run-*.json"))):
        with open(path) as f:
            r = json.load(f)
        runs.setdefault(r["config"], []).append(r)
    order = [c for c in ("native", "remote", "inprocess") if c in runs]
    labels = {"native": "Native over HTTP", "remote": "Remote (2 workers) over HTTP", "inprocess": "in process (64 async callers)"}

    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    rows = {}
    for c in order:
        rs = runs[c]
        rows[c] = {
            "runs": len(rs),
            "rps": med([r["client"]["requests_per_s"] for r in rs]),
            "p50": med([r["client"]["p50_ms"] for r in rs]),
            "p99": med([r["client"]["p99_ms"] for r in rs]),
            "non2xx": sum(r["client"].get("non2xx", 0) for r in rs),
            "errors": sum(r["client"].get("socket_errors", 0) for r in rs),
            **{f"{q}_{k}": med([r["server"][f"{q}_ms"][k] for r in rs]) for q in ("p50", "p99") for k in ("http", "call", "queue", "compute")},
            "overhead_p50": med([None if r["server"]["p50_ms"]["http"] is None else r["server"]["p50_ms"]["http"] - r["server"]["p50_ms"]["call"] for r in rs]),
            "batch": med([r["server"]["mean_batch_rows"] for r in rs]),
            "load": [(r["loadavg_before"], r["loadavg_after"]) for r in rs],
        }
    base = rows.get("inprocess")
    out = ["| configuration | runs | requests/s | p50 (ms) | p99 (ms) | throughput vs in-process | p50 vs in-process | non-2xx | socket errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in order:
        r = rows[c]
        ratio_rps = fmt(r["rps"] / base["rps"]) + "×" if base and r["rps"] else "–"
        ratio_p50 = fmt(r["p50"] / base["p50"]) + "×" if base and r["p50"] else "–"
        out.append(f"| {labels[c]} | {r['runs']} | {fmt(r['rps'], 0)} | {fmt(r['p50'])} | {fmt(r['p99'])} | {ratio_rps} | {ratio_p50} | {r['non2xx']} | {r['errors']} |")
    out += ["", "Server-side medians (ms; from /metrics diffs, or the baseline's own meter listener):", "",
            "| configuration | HTTP server p50 | Tandem call p50 | HTTP overhead p50 (HTTP − call) | queue p50 | compute p50 (per batch) | mean rows per batch | HTTP p99 | call p99 | queue p99 | compute p99 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in order:
        r = rows[c]
        out.append(f"| {labels[c]} | {fmt(r['p50_http'])} | {fmt(r['p50_call'])} | {fmt(r['overhead_p50'])} | {fmt(r['p50_queue'])} | {fmt(r['p50_compute'])} | {fmt(r['batch'], 1)} | {fmt(r['p99_http'])} | {fmt(r['p99_call'])} | {fmt(r['p99_queue'])} | {fmt(r['p99_compute'])} |")
    out += ["", "Load average (1 min) before → after each measurement:", ""]
    for c in order:
        out.append(f"- {labels[c]}: " + ", ".join(f"{b.split()[0]} → {a.split()[0]}" for b, a in rows[c]["load"]))
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "run":
        json.dump(run(*sys.argv[2:8]), sys.stdout, indent=1)
        print()
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        sys.stdout.write(summary(sys.argv[2]))
    else:
        sys.exit(__doc__)
