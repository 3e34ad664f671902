// Pure derivations from snapshots to chart data: { x: seconds[], span: seconds, series: [{ label, values }] }.

import { BACKENDS, isNumber } from './format.js';
import { snapshotSeconds, WINDOW_SIZE } from './store.js';

/**
 * Seconds a full window of snapshots covers at the server's interval
 * (Server:Dashboard:Interval, sent as intervalSeconds; 1 s when absent),
 * so the time axis spans what the store keeps.
 */
export function windowSeconds(snapshots) {
  const interval = snapshots.at(-1)?.intervalSeconds;
  return WINDOW_SIZE * (isNumber(interval) && interval > 0 ? interval : 1);
}

/**
 * Builds one series per label that `pick` reports in any snapshot of the
 * window. `pick` returns a Map of label → value for a single snapshot;
 * labels absent from a snapshot get `missing` (0 for rates, null for gaps).
 */
export function collect(snapshots, pick, { missing = null, order } = {}) {
  const perSnapshot = snapshots.map(pick);
  const labels = new Set();
  for (const values of perSnapshot) for (const label of values.keys()) labels.add(label);

  const sorted = [...labels].sort(order ?? ((a, b) => a.localeCompare(b)));
  return {
    x: snapshots.map(snapshotSeconds),
    span: windowSeconds(snapshots),
    series: sorted.map((label) => ({
      label,
      values: perSnapshot.map((values) => {
        const value = values.get(label);
        return isNumber(value) ? value : missing;
      }),
    })),
  };
}

function addTo(map, key, value) {
  if (isNumber(value)) map.set(key, (map.get(key) ?? 0) + value);
}

const byBackendOrder = (a, b) => rank(a) - rank(b) || a.localeCompare(b);
function rank(backend) {
  const index = BACKENDS.indexOf(backend);
  return index < 0 ? BACKENDS.length : index;
}

/** Calls/s per backend, summed over kernels. */
export function backendTotals(snapshot) {
  const totals = new Map();
  for (const row of snapshot.throughput) addTo(totals, String(row.backend ?? 'unknown'), row.perSecond);
  return totals;
}

export function throughputByBackend(snapshots) {
  return collect(snapshots, backendTotals, { missing: 0, order: byBackendOrder });
}

/** Latest calls/s as kernel → backend → rate. */
export function throughputByKernel(snapshot) {
  const table = new Map();
  for (const row of snapshot.throughput) {
    const kernel = String(row.kernel ?? 'unknown');
    if (!table.has(kernel)) table.set(kernel, new Map());
    addTo(table.get(kernel), String(row.backend ?? 'unknown'), row.perSecond);
  }
  return table;
}

function percentiles(source, names) {
  const values = new Map();
  if (source) for (const [label, field] of names) values.set(label, source[field]);
  return values;
}

const LATENCY_FIELDS = [['p50', 'p50'], ['p95', 'p95'], ['p99', 'p99']];
const percentileOrder = (a, b) => a.localeCompare(b, 'en', { numeric: true });

export function kernelLatency(snapshots, kernel) {
  return collect(
    snapshots,
    (s) => percentiles(s.latency.find((row) => row.kernel === kernel), LATENCY_FIELDS),
    { order: percentileOrder },
  );
}

export function httpLatency(snapshots) {
  return collect(snapshots, (s) => percentiles(s.http, LATENCY_FIELDS), { order: percentileOrder });
}

const QUEUE_COMPUTE_FIELDS = [
  ['queue p50', 'queueP50'], ['queue p95', 'queueP95'],
  ['compute p50', 'computeP50'], ['compute p95', 'computeP95'],
];
const QUEUE_COMPUTE_ORDER = QUEUE_COMPUTE_FIELDS.map(([label]) => label);

export function queueCompute(snapshots, kernel) {
  return collect(
    snapshots,
    (s) => percentiles(s.queueCompute.find((row) => row.kernel === kernel), QUEUE_COMPUTE_FIELDS),
    { order: (a, b) => QUEUE_COMPUTE_ORDER.indexOf(a) - QUEUE_COMPUTE_ORDER.indexOf(b) },
  );
}

export function errorRates(snapshots) {
  return collect(snapshots, (s) => {
    const rates = new Map();
    for (const row of s.errors) addTo(rates, `${row.backend ?? '?'} ${row.code ?? '?'}`, row.perSecond);
    return rates;
  }, { missing: 0 });
}

export function workersInFlight(snapshots) {
  return collect(snapshots, (s) => {
    const inFlight = new Map();
    for (const worker of s.workers) inFlight.set(String(worker.name ?? '?'), worker.inFlight);
    return inFlight;
  }, { order: (a, b) => a.localeCompare(b, 'en', { numeric: true }) });
}

/** Latest batch-size histogram for a kernel; null when the kernel has none. */
export function batchHistogram(snapshot, kernel) {
  const entry = snapshot?.batchSizes.find((row) => row.kernel === kernel);
  const buckets = Array.isArray(entry?.buckets) ? entry.buckets : [];
  if (buckets.length === 0) return null;
  const sorted = [...buckets].sort((a, b) => upperBound(a) - upperBound(b));
  return {
    labels: sorted.map((bucket) => (isNumber(bucket.le) ? `≤${bucket.le}` : '+Inf')),
    counts: sorted.map((bucket) => (isNumber(bucket.count) ? bucket.count : 0)),
  };
}

function upperBound(bucket) {
  return isNumber(bucket.le) ? bucket.le : Infinity;
}

/** Kernel names worth offering in the selector: the known three plus any the server reports. */
export function knownKernels(snapshot, defaults) {
  const names = new Set(defaults);
  if (snapshot) {
    for (const field of ['kernels', 'latency', 'queueCompute', 'batchSizes', 'throughput']) {
      for (const row of snapshot[field]) if (row.kernel) names.add(String(row.kernel));
    }
  }
  return [...names];
}
