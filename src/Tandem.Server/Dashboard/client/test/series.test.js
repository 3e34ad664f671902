import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchHistogram, backendTotals, errorRates, kernelLatency, throughputByBackend, windowSeconds } from '../src/series.js';
import { createStore, WINDOW_SIZE } from '../src/store.js';

function snapshotAt(second, fields = {}) {
  return { time: new Date(Date.UTC(2026, 10, 24, 5, 30, second)).toISOString(), ...fields };
}

test('ingest_DuplicateTime_IsIgnored', () => {
  const store = createStore();
  assert.equal(store.ingest(snapshotAt(0)), true);
  assert.equal(store.ingest(snapshotAt(0)), false);
  assert.equal(store.received, 1);
});

test('ingest_OlderTime_RestartsWindow', () => {
  const store = createStore();
  store.ingest(snapshotAt(5));
  store.ingest(snapshotAt(6));
  store.ingest(snapshotAt(1));
  assert.deepEqual(store.snapshots.map((s) => s.time), [snapshotAt(1).time]);
});

test('ingest_PastWindowSize_KeepsNewest', () => {
  const store = createStore(3);
  for (let second = 0; second < 5; second++) store.ingest(snapshotAt(second));
  assert.deepEqual(store.snapshots.map((s) => s.time), [2, 3, 4].map((s) => snapshotAt(s).time));
});

test('ingest_MissingArrays_AreDefaulted', () => {
  const store = createStore();
  store.ingest(snapshotAt(0, { throughput: null }));
  assert.deepEqual(store.latest.throughput, []);
  assert.deepEqual(store.latest.workers, []);
  assert.equal(store.latest.native, null);
});

test('throughputByBackend_BackendAbsentInOneSnapshot_CountsAsZero', () => {
  const store = createStore();
  store.ingest(snapshotAt(0, { throughput: [
    { kernel: 'a', backend: 'native', perSecond: 10 },
    { kernel: 'b', backend: 'native', perSecond: 5 },
  ] }));
  store.ingest(snapshotAt(1, { throughput: [{ kernel: 'a', backend: 'managed', perSecond: 3 }] }));

  const { series } = throughputByBackend(store.snapshots);

  assert.deepEqual(series, [
    { label: 'managed', values: [0, 3] },
    { label: 'native', values: [15, 0] },
  ]);
  assert.deepEqual([...backendTotals(store.latest)], [['managed', 3]]);
});

test('kernelLatency_KernelAbsent_LeavesGaps', () => {
  const store = createStore();
  store.ingest(snapshotAt(0, { latency: [{ kernel: 'k', p50: 1, p95: 2, p99: 3 }] }));
  store.ingest(snapshotAt(1, { latency: [] }));

  const { series } = kernelLatency(store.snapshots, 'k');

  assert.deepEqual(series.map((s) => s.label), ['p50', 'p95', 'p99']);
  assert.deepEqual(series[2].values, [3, null]);
});

test('errorRates_LabelsByBackendAndCode', () => {
  const store = createStore();
  store.ingest(snapshotAt(0, { errors: [{ backend: 'native', code: 'INTERNAL', perSecond: 0.5 }] }));
  assert.deepEqual(errorRates(store.snapshots).series, [{ label: 'native INTERNAL', values: [0.5] }]);
});

test('batchHistogram_InfinityBucket_SortsLastAndLabelled', () => {
  const store = createStore();
  store.ingest(snapshotAt(0, { batchSizes: [{ kernel: 'k', buckets: [
    { le: null, count: 1 }, { le: 2, count: 5 }, { le: 1, count: 3 },
  ] }] }));

  assert.deepEqual(batchHistogram(store.latest, 'k'), { labels: ['≤1', '≤2', '+Inf'], counts: [3, 5, 1] });
  assert.equal(batchHistogram(store.latest, 'other'), null);
});

test('windowSeconds_HalfSecondInterval_SpansTheWindowAtThatInterval', () => {
  assert.equal(windowSeconds([snapshotAt(0, { intervalSeconds: 0.5 })]), WINDOW_SIZE * 0.5);
});

test('windowSeconds_NoInterval_AssumesOneSecond', () => {
  assert.equal(windowSeconds([snapshotAt(0)]), WINDOW_SIZE);
  assert.equal(windowSeconds([]), WINDOW_SIZE);
});
