// Interop: drives a real tandem-worker process with an independent gRPC
// implementation (@grpc/grpc-js + @grpc/proto-loader, loading the same .proto
// files), over the worker's default transport, a Unix domain socket.
// Run: make test-interop (or `npm test` here with TANDEM_WORKER_PATH set).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const workerPath = process.env.TANDEM_WORKER_PATH ?? join(repo, 'native', 'target', 'release', 'tandem-worker');
const DEADLINE_MS = 20_000;

const definition = protoLoader.loadSync(['tandem/v1/accelerator.proto', 'grpc/health/v1/health.proto'], {
  includeDirs: [join(repo, 'proto')],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const loaded = grpc.loadPackageDefinition(definition);
const Accelerator = loaded.tandem.v1.Accelerator;
const Health = loaded.grpc.health.v1.Health;

let dir;
let worker;
let exited;
let accelerator;
let health;
let workerLog = '';

const deadline = () => new Date(Date.now() + DEADLINE_MS);
const unary = (client, method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, { deadline: deadline() }, (error, reply) => (error ? reject(error) : resolve(reply))),
  );

// Little-endian tensor helpers: the wire format of Tensor.inline_data.
const f32 = (values) => Buffer.from(new Float32Array(values).buffer);
const f64 = (values) => Buffer.from(new Float64Array(values).buffer);
const i64 = (values) => Buffer.from(new BigInt64Array(values.map(BigInt)).buffer);
const readI64 = (buffer) => Array.from(new BigInt64Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.length))).map(Number);
const readF64 = (buffer) => Array.from(new Float64Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.length)));

// BLAKE3 published test vectors: input byte i is i mod 251.
const vectors = new Map(
  readFileSync(join(repo, 'tests', 'data', 'blake3_vectors.txt'), 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(' '))
    .map(([length, hex]) => [Number(length), hex]),
);
const vectorInput = (length) => Buffer.from(Array.from({ length }, (_, i) => i % 251));

async function waitForServing() {
  const until = Date.now() + DEADLINE_MS;
  for (;;) {
    try {
      const reply = await unary(health, 'Check', { service: '' });
      if (reply.status === 'SERVING') return;
    } catch (error) {
      if (Date.now() > until) throw error;
    }
    if (Date.now() > until) throw new Error('the worker did not become SERVING in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

before(async () => {
  assert.ok(existsSync(workerPath), `tandem-worker not found at ${workerPath}; run 'make build' or set TANDEM_WORKER_PATH`);
  dir = mkdtempSync(join(tmpdir(), 'tandem-interop-'));
  const socket = join(dir, 'worker.sock');
  worker = spawn(workerPath, ['--socket', socket, '--grace', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  exited = once(worker, 'exit');
  worker.stderr.on('data', (chunk) => { workerLog += chunk.toString(); });
  const [line] = await Promise.race([
    once(worker.stdout, 'data'),
    exited.then(([code]) => { throw new Error(`tandem-worker exited early with ${code}`); }),
  ]);
  assert.match(line.toString(), /"event":"listening"/);
  worker.stdout.resume();
  const target = `unix://${socket}`;
  accelerator = new Accelerator(target, grpc.credentials.createInsecure());
  health = new Health(target, grpc.credentials.createInsecure());
  await waitForServing();
});

after(async () => {
  accelerator?.close();
  health?.close();
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    worker.kill('SIGKILL');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('Describe lists every reference kernel with the worker and ABI versions', async () => {
  const reply = await unary(accelerator, 'Describe', {});
  const names = reply.kernel_set.kernels.map((k) => k.name);
  for (const name of ['similarity.topk', 'montecarlo.european', 'hash.blake3']) assert.ok(names.includes(name), name);
  assert.equal(reply.abi_version >> 16, 1);
  assert.match(reply.worker_version, /^\d+\.\d+\.\d+/);
  assert.ok(reply.instance_id.length > 0);
  const topk = reply.kernel_set.kernels.find((k) => k.name === 'similarity.topk');
  assert.equal(topk.state_kind, 'vector_collection');
  assert.equal(topk.flags.batchable, true);
});

test('Invoke runs top-k over a state created over the wire', async () => {
  // Four 2-d vectors; the query (1, 0) scores 4, 3, 2, 1 by dot product.
  const created = await unary(accelerator, 'CreateState', {
    state_id: 'interop-collection',
    kind: 'vector_collection',
    tensors: [
      { dtype: 'DTYPE_F32', shape: [4, 2], inline_data: f32([1, 0, 4, 0, 2, 0, 3, 0]) },
      { dtype: 'DTYPE_I64', shape: [4], inline_data: i64([10, 20, 30, 40]) },
    ],
  });
  assert.equal(created.state_id, 'interop-collection');
  const reply = await unary(accelerator, 'Invoke', {
    kernel: 'similarity.topk',
    state_id: 'interop-collection',
    inputs: [{ dtype: 'DTYPE_F32', shape: [1, 2], inline_data: f32([1, 0]) }],
    params: [{ int_value: 2 }, { int_value: 0 }],
    outputs: [{ dtype: 'DTYPE_I64', shape: [1, 2] }, { dtype: 'DTYPE_F32', shape: [1, 2] }],
  });
  assert.deepEqual(readI64(reply.outputs[0].inline_data), [20, 40]);
  const dropped = await unary(accelerator, 'DropState', { state_id: 'interop-collection' });
  assert.equal(dropped.dropped, true);
});

test('Invoke prices options deterministically', async () => {
  const request = {
    kernel: 'montecarlo.european',
    inputs: [
      { dtype: 'DTYPE_F64', shape: [2, 6], inline_data: f64([100, 100, 0.05, 0.2, 1, 1, 100, 110, 0.01, 0.3, 0.5, 0]) },
      { dtype: 'DTYPE_I64', shape: [2], inline_data: i64([0, 1]) },
    ],
    params: [{ int_value: 20000 }, { int_value: 7 }, { int_value: 1 }],
    outputs: [{ dtype: 'DTYPE_F64', shape: [2] }, { dtype: 'DTYPE_F64', shape: [2] }],
  };
  const first = readF64((await unary(accelerator, 'Invoke', request)).outputs[0].inline_data);
  const second = readF64((await unary(accelerator, 'Invoke', request)).outputs[0].inline_data);
  assert.deepEqual(first, second);
  // Black-Scholes call price for the first row is about 10.45.
  assert.ok(Math.abs(first[0] - 10.45) < 0.5, `price ${first[0]}`);
});

test('InvokeStream hashes a client stream to the published BLAKE3 digest', async () => {
  const length = 7169;
  const input = vectorInput(length);
  const reply = await new Promise((resolve, reject) => {
    const call = accelerator.InvokeStream({ deadline: deadline() }, (error, r) => (error ? reject(error) : resolve(r)));
    call.write({ header: { kernel: 'hash.blake3', outputs: [{ dtype: 'DTYPE_U8', shape: [64] }] } });
    for (let offset = 0; offset < length; offset += 1000) call.write({ data: input.subarray(offset, offset + 1000) });
    call.end();
  });
  assert.equal(reply.outputs[0].inline_data.toString('hex'), vectors.get(length).slice(0, 128));
});

test('the traceparent metadata reaches the worker log line of the call', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`);
  await new Promise((resolve, reject) =>
    accelerator.Invoke(
      {
        kernel: 'diagnostics.noop',
        inputs: [{ dtype: 'DTYPE_U8', shape: [1], inline_data: Buffer.from([1]) }, { dtype: 'DTYPE_U8', shape: [0], inline_data: Buffer.alloc(0) }],
      },
      metadata,
      { deadline: deadline() },
      (error, reply) => (error ? reject(error) : resolve(reply)),
    ),
  );
  const until = Date.now() + DEADLINE_MS;
  while (!workerLog.includes(traceId) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  const line = workerLog.split('\n').find((l) => l.includes(traceId));
  assert.ok(line, 'no worker log line carries the trace id');
  const entry = JSON.parse(line);
  assert.equal(entry.trace_id, traceId);
  assert.equal(entry.kernel, 'diagnostics.noop');
  assert.equal(entry.code, 'OK');
});

test('errors arrive as gRPC statuses', async () => {
  await assert.rejects(unary(accelerator, 'Invoke', { kernel: 'no.such.kernel' }), (e) => e.code === grpc.status.NOT_FOUND);
  await assert.rejects(
    unary(accelerator, 'Invoke', { kernel: 'similarity.topk', state_id: 'missing', inputs: [], outputs: [] }),
    (e) => e.code === grpc.status.NOT_FOUND || e.code === grpc.status.INVALID_ARGUMENT,
  );
  await assert.rejects(
    unary(accelerator, 'Invoke', {
      kernel: 'montecarlo.european',
      inputs: [{ dtype: 'DTYPE_F32', shape: [1, 6], inline_data: f32([1, 2, 3, 4, 5, 6]) }],
      outputs: [],
    }),
    (e) => e.code === grpc.status.INVALID_ARGUMENT && e.details.length > 0,
  );
  await assert.rejects(unary(health, 'Check', { service: 'no.such.service' }), (e) => e.code === grpc.status.NOT_FOUND);
});

test('a call over the descriptor\'s work bound is RESOURCE_EXHAUSTED naming the limit, whoever the client', async () => {
  // 100 options × 10^9 paths = 10^11 paths; montecarlo.european allows 10^10 per call.
  const rows = [];
  for (let i = 0; i < 100; i++) rows.push(100, 100, 0.01, 0.2, 1, 1);
  const request = {
    kernel: 'montecarlo.european',
    inputs: [
      { dtype: 'DTYPE_F64', shape: [100, 6], inline_data: f64(rows) },
      { dtype: 'DTYPE_I64', shape: [100], inline_data: i64([...Array(100).keys()]) },
    ],
    params: [{ int_value: 1000000000 }, { int_value: 7 }, { int_value: 0 }],
    outputs: [{ dtype: 'DTYPE_F64', shape: [100] }, { dtype: 'DTYPE_F64', shape: [100] }],
  };
  await assert.rejects(
    unary(accelerator, 'Invoke', request),
    (e) => e.code === grpc.status.RESOURCE_EXHAUSTED && e.details.includes('(limit max_work_per_call)') && e.details.includes('batch 100 × paths 1000000000'),
  );
});

test('Health Watch reports SERVING, then NOT_SERVING on SIGTERM, and the worker exits 0', async () => {
  const statuses = [];
  const watch = health.Watch({ service: '' });
  const ended = new Promise((resolve) => {
    watch.on('data', (reply) => {
      statuses.push(reply.status);
      if (reply.status === 'SERVING') worker.kill('SIGTERM');
      if (reply.status === 'NOT_SERVING') resolve();
    });
    watch.on('error', () => resolve());
    watch.on('end', () => resolve());
  });
  await ended;
  watch.cancel();
  const [code, signal] = await exited;
  assert.equal(statuses[0], 'SERVING');
  assert.ok(statuses.includes('NOT_SERVING'), `statuses seen: ${statuses}`);
  assert.equal(signal, null);
  assert.equal(code, 0);
});
