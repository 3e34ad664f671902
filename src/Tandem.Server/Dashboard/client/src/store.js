// Rolling window of snapshots. Charts read from here; nothing else keeps history.

export const WINDOW_SIZE = 120;

const ARRAY_FIELDS = [
  'throughput', 'latency', 'queueCompute', 'batchSizes', 'errors',
  'fallbacks', 'kernels', 'workers', 'operations',
];

/** Fills in absent fields so derivations never have to guard against them. */
export function normalizeSnapshot(raw) {
  const snapshot = { ...raw };
  for (const field of ARRAY_FIELDS) {
    if (!Array.isArray(snapshot[field])) snapshot[field] = [];
  }
  for (const field of ['http', 'native', 'load']) {
    if (snapshot[field] == null || typeof snapshot[field] !== 'object') snapshot[field] = null;
  }
  return snapshot;
}

export function snapshotSeconds(snapshot) {
  return Date.parse(snapshot.time) / 1000;
}

export function createStore(windowSize = WINDOW_SIZE) {
  const listeners = [];
  const store = {
    snapshots: [],
    latest: null,
    received: 0,

    /** Returns false when the snapshot was a duplicate or unusable. */
    ingest(raw) {
      if (raw == null || typeof raw !== 'object') return false;
      const snapshot = normalizeSnapshot(raw);
      const seconds = snapshotSeconds(snapshot);
      if (!Number.isFinite(seconds)) return false;

      const last = store.latest ? snapshotSeconds(store.latest) : -Infinity;
      if (seconds === last) return false;
      // Time went backwards: the server restarted or its clock moved. The old
      // window would no longer be sorted, which uPlot requires, so start over.
      if (seconds < last) store.snapshots.length = 0;

      store.snapshots.push(snapshot);
      if (store.snapshots.length > windowSize) {
        store.snapshots.splice(0, store.snapshots.length - windowSize);
      }
      store.latest = snapshot;
      store.received += 1;
      for (const listener of listeners) listener(snapshot);
      return true;
    },

    subscribe(listener) {
      listeners.push(listener);
    },
  };
  return store;
}
