// Checks deploy/ without a cluster or a container engine:
// - every manifest in deploy/kubernetes validates against the Kubernetes
//   schemas (kubernetes-models, offline) and is listed in kustomization.yaml;
// - the rules the manifests exist to keep (issue 14): gRPC health probes on
//   the worker, HTTP probes on /healthz and /readyz on the server, rolling
//   updates that never lower capacity, disruption budgets that select the
//   pods, the headless Service the server's dns:/// endpoint names, the
//   repository volume on both, requests set, every Tandem option the server
//   is given documented in docs/operations.md;
// - the worker's entry point turns the environment into the right flags and
//   refuses a setup the worker would refuse, with a message;
// - every file the Dockerfiles copy is one the build produces or the
//   repository holds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, chmodSync, rmSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const manifests = path.join(root, "deploy/kubernetes");

function documents() {
  const docs = [];
  for (const file of readdirSync(manifests).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort()) {
    for (const doc of parseAllDocuments(readFileSync(path.join(manifests, file), "utf8"))) {
      assert.deepEqual(doc.errors, [], `${file} does not parse`);
      const value = doc.toJS();
      if (value) docs.push({ file, value });
    }
  }
  return docs;
}

async function model(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  const module = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
  return (await import(module))[kind];
}

const all = documents();
const find = (kind, name) => {
  const found = all.find((d) => d.value.kind === kind && d.value.metadata?.name === name);
  assert.ok(found, `no ${kind} named ${name} in deploy/kubernetes`);
  return found.value;
};
const container = (deployment) => deployment.spec.template.spec.containers[0];
const env = (c) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

test("every manifest validates against the Kubernetes schemas", async () => {
  assert.ok(all.length >= 7, `only ${all.length} documents`);
  for (const { file, value } of all) {
    const Model = await model(value.apiVersion, value.kind);
    assert.doesNotThrow(() => new Model(value).validate(), `${file}: ${value.kind} ${value.metadata?.name}`);
  }
});

test("a manifest with a wrong type is refused by the same check", async () => {
  const Deployment = await model("apps/v1", "Deployment");
  const broken = structuredClone(find("Deployment", "tandem-worker"));
  broken.spec.replicas = "three";
  assert.throws(() => new Deployment(broken).validate(), /replicas/);
});

test("kustomization.yaml lists every manifest", () => {
  const kustomization = parseAllDocuments(readFileSync(path.join(manifests, "kustomization.yaml"), "utf8"))[0].toJS();
  const files = readdirSync(manifests).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
  assert.deepEqual([...kustomization.resources].sort(), files);
});

test("the worker: gRPC health probes, a rolling update that keeps capacity, a headless Service and a budget", () => {
  const worker = find("Deployment", "tandem-worker");
  const c = container(worker);
  const grpc = c.ports.find((p) => p.name === "grpc").containerPort;
  // The kubelet's gRPC probes speak neither TLS nor tokens: they go to the
  // plaintext health-only port the worker is told to serve.
  const health = c.ports.find((p) => p.name === "health").containerPort;
  assert.equal(env(c).TANDEM_WORKER_HEALTH_LISTEN, `0.0.0.0:${health}`);
  assert.deepEqual(c.readinessProbe.grpc, { port: health }, "readiness is the standard gRPC probe (service \"\")");
  assert.deepEqual(c.livenessProbe.grpc, { port: health, service: "liveness" });
  assert.deepEqual(c.startupProbe.grpc, { port: health, service: "liveness" });
  // TLS from a mounted Secret, the key not readable by others.
  const tlsMount = c.volumeMounts.find((m) => m.mountPath === path.dirname(env(c).TANDEM_WORKER_TLS_CERT));
  assert.ok(tlsMount, "the TLS Secret is mounted where the worker reads its certificate");
  assert.equal(path.dirname(env(c).TANDEM_WORKER_TLS_KEY), tlsMount.mountPath);
  const tlsVolume = worker.spec.template.spec.volumes.find((v) => v.name === tlsMount.name);
  assert.ok(tlsVolume.secret?.secretName, "the certificate comes from a Secret");
  assert.equal(tlsVolume.secret.defaultMode & 0o007, 0, "the key is not readable by others");
  assert.equal(worker.spec.strategy.rollingUpdate.maxUnavailable, 0);
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory, "requests are set");
  assert.equal(env(c).TANDEM_WORKER_LISTEN, `0.0.0.0:${grpc}`);
  assert.ok(worker.spec.template.spec.terminationGracePeriodSeconds > Number(env(c).TANDEM_WORKER_GRACE), "the pod outlives the worker's drain");

  const service = find("Service", "tandem-worker");
  assert.equal(service.spec.clusterIP, "None", "headless: one DNS record per pod");
  assert.deepEqual(service.spec.selector, worker.spec.selector.matchLabels);
  assert.equal(service.spec.ports[0].port, grpc);

  const budget = find("PodDisruptionBudget", "tandem-worker");
  assert.deepEqual(budget.spec.selector.matchLabels, worker.spec.selector.matchLabels);
  assert.ok(budget.spec.maxUnavailable < worker.spec.replicas);
  assert.deepEqual(worker.spec.template.metadata.labels["app.kubernetes.io/name"], worker.spec.selector.matchLabels["app.kubernetes.io/name"]);
});

test("the server: HTTP probes, the dns:/// worker endpoint, two replicas on one repository", () => {
  const server = find("Deployment", "tandem-server");
  const c = container(server);
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.ok(server.spec.replicas >= 2);
  assert.equal(server.spec.strategy.rollingUpdate.maxUnavailable, 0);
  const vars = env(c);
  const service = find("Service", "tandem-worker");
  assert.equal(vars.Tandem__Remote__Endpoints__0, `dns:///${service.metadata.name}:${service.spec.ports[0].port}`);
  assert.equal(vars.Tandem__Remote__Tls__Enabled, "true", "the server reaches the TLS workers over TLS");
  const caMount = c.volumeMounts.find((m) => m.mountPath === path.dirname(vars.Tandem__Remote__Tls__CaCertificateFile));
  assert.ok(caMount, "the workers' CA is mounted where the server reads it");
  assert.equal(find("Service", "tandem-server").spec.selector["app.kubernetes.io/name"], "tandem-server");
  assert.deepEqual(find("PodDisruptionBudget", "tandem-server").spec.selector.matchLabels, server.spec.selector.matchLabels);

  // Server and workers mount one repository volume where they are told it is.
  const worker = find("Deployment", "tandem-worker");
  for (const [deployment, dir] of [[server, vars.Tandem__StateRepository], [worker, env(container(worker)).TANDEM_WORKER_REPOSITORY]]) {
    const mount = container(deployment).volumeMounts.find((m) => m.mountPath === dir);
    assert.ok(mount, `${deployment.metadata.name} mounts ${dir}`);
    const volume = deployment.spec.template.spec.volumes.find((v) => v.name === mount.name);
    assert.equal(volume.persistentVolumeClaim.claimName, "tandem-states");
  }
  assert.deepEqual(find("PersistentVolumeClaim", "tandem-states").spec.accessModes, ["ReadWriteMany"]);
});

test("every option the server is given is one docs/operations.md documents", () => {
  const docs = readFileSync(path.join(root, "docs/operations.md"), "utf8");
  const vars = Object.keys(env(container(find("Deployment", "tandem-server"))));
  assert.ok(vars.length > 5);
  for (const name of vars) {
    // Server__Urls -> Server:Urls; Tandem__Remote__Endpoints__0 -> Endpoints (its section's table).
    const key = name.split("__").filter((p) => !/^\d+$/.test(p)).join(":");
    const last = key.split(":").slice(key.startsWith("Tandem:Remote:") ? 2 : 0).join(":");
    assert.ok(docs.includes(`\`${key}\``) || docs.includes(`\`${last}\``), `${name} (${key}) is not documented in docs/operations.md`);
  }
});

test("every secret the pods read is named in the operations guide", () => {
  const docs = readFileSync(path.join(root, "docs/operations.md"), "utf8");
  const secrets = new Set();
  for (const { value } of all.filter((d) => d.value.kind === "Deployment")) {
    for (const v of value.spec.template.spec.volumes ?? []) if (v.secret) secrets.add(v.secret.secretName);
    for (const e of container(value).env ?? []) if (e.valueFrom?.secretKeyRef) secrets.add(e.valueFrom.secretKeyRef.name);
  }
  for (const secret of secrets) assert.ok(docs.includes(secret), `docs/operations.md does not say how to create Secret ${secret}`);
});

// The worker's entry point, with a stub worker that prints its arguments.
function entrypoint(vars, args = []) {
  const dir = mkdtempSync(path.join(tmpdir(), "tandem-entrypoint-"));
  try {
    const stub = path.join(dir, "tandem-worker");
    writeFileSync(stub, "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n");
    chmodSync(stub, 0o755);
    const token = path.join(dir, "token");
    writeFileSync(token, "secret\n", { mode: 0o400 });
    const states = path.join(dir, "states");
    mkdirSync(states);
    const resolved = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v.replace("$TOKEN", token).replace("$STATES", states).replace("$DIR", dir)]));
    const run = spawnSync("/bin/sh", [path.join(root, "deploy/images/worker-entrypoint.sh"), ...args], {
      env: { PATH: process.env.PATH, TANDEM_WORKER_BIN: stub, ...resolved },
      encoding: "utf8",
    });
    return { status: run.status, argv: run.stdout.split("\n").filter(Boolean), stderr: run.stderr, token, states };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the entry point turns the pod's environment into the worker's flags", () => {
  const worker = env(container(find("Deployment", "tandem-worker")));
  assert.ok(worker.TANDEM_WORKER_TOKEN.secretKeyRef, "the token comes from a Secret");
  const run = entrypoint({
    TANDEM_WORKER_LISTEN: worker.TANDEM_WORKER_LISTEN,
    TANDEM_WORKER_TOKEN_FILE: "$TOKEN",
    TANDEM_WORKER_REPOSITORY: "$STATES",
    TANDEM_WORKER_METRICS: "0.0.0.0:9090",
    TANDEM_WORKER_GRACE: "15",
    TANDEM_WORKER_MAX_STATE_BYTES: "1024",
    TANDEM_WORKER_KERNELS: "/opt/a.so:/opt/b.so",
    // Any readable files stand in for the PEM files: the worker checks their contents.
    TANDEM_WORKER_TLS_CERT: "$TOKEN",
    TANDEM_WORKER_TLS_KEY: "$STATES/../token",
    TANDEM_WORKER_TLS_CLIENT_CA: "$TOKEN",
    TANDEM_WORKER_HEALTH_LISTEN: worker.TANDEM_WORKER_HEALTH_LISTEN,
  }, ["--log-level", "debug"]);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.argv, [
    "--listen", "0.0.0.0:50051", "--grace", "15", "--token-file", run.token, "--repository", run.states,
    "--metrics-listen", "0.0.0.0:9090", "--tls-cert", run.token, "--tls-key", `${run.states}/../token`,
    "--tls-client-ca", run.token, "--health-listen", "0.0.0.0:8081", "--max-state-bytes", "1024",
    "--kernels", "/opt/a.so", "--kernels", "/opt/b.so", "--log-level", "debug",
  ]);
});

test("the entry point refuses what the worker would refuse, saying what to set", () => {
  let run = entrypoint({ TANDEM_WORKER_LISTEN: "0.0.0.0:50051" });
  assert.equal(run.status, 64);
  assert.match(run.stderr, /TANDEM_WORKER_TOKEN_FILE/);
  run = entrypoint({ TANDEM_WORKER_TOKEN_FILE: "$DIR/missing" });
  assert.equal(run.status, 64);
  assert.match(run.stderr, /not a readable file/);
  run = entrypoint({ TANDEM_WORKER_TOKEN_FILE: "$TOKEN", TANDEM_WORKER_REPOSITORY: "$DIR/nowhere" });
  assert.equal(run.status, 64);
  assert.match(run.stderr, /mount the state repository/);
  run = entrypoint({ TANDEM_WORKER_TOKEN_FILE: "$TOKEN", TANDEM_WORKER_TLS_CERT: "$TOKEN" });
  assert.equal(run.status, 64);
  assert.match(run.stderr, /TANDEM_WORKER_TLS_KEY go together/);
  run = entrypoint({ TANDEM_WORKER_TOKEN_FILE: "$TOKEN", TANDEM_WORKER_TLS_CERT: "$DIR/missing.crt", TANDEM_WORKER_TLS_KEY: "$TOKEN" });
  assert.equal(run.status, 64);
  assert.match(run.stderr, /missing\.crt is not a readable file \(mount the TLS Secret/);
  run = entrypoint({ TANDEM_WORKER_TOKEN_FILE: "$TOKEN", TANDEM_WORKER_TLS_CLIENT_CA: "$TOKEN" });
  assert.equal(run.status, 64);
  assert.match(run.stderr, /TANDEM_WORKER_TLS_CLIENT_CA needs TANDEM_WORKER_TLS_CERT/);
  run = entrypoint({ TANDEM_WORKER_LISTEN: "127.0.0.1:50051" });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.argv, ["--listen", "127.0.0.1:50051", "--grace", "10"]);
  // The token in the environment (from a Secret) is the worker's to read: not on the command line.
  run = entrypoint({ TANDEM_WORKER_TOKEN: "from-a-secret" });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.argv, ["--listen", "0.0.0.0:50051", "--grace", "10"]);
});

test("every flag the entry point passes is one the real worker knows", () => {
  const binary = path.join(root, "native/target/release/tandem-worker");
  assert.ok(existsSync(binary), "run make build first");
  const help = execFileSync("/bin/sh", [path.join(root, "deploy/images/worker-entrypoint.sh"), "--help"], {
    env: { PATH: process.env.PATH, TANDEM_WORKER_BIN: binary, TANDEM_WORKER_LISTEN: "127.0.0.1:0" },
    encoding: "utf8",
  });
  // Every flag the entry point passes is one the worker knows.
  for (const flag of ["--listen", "--grace", "--token-file", "--repository", "--metrics-listen", "--max-state-bytes", "--kernels",
    "--tls-cert", "--tls-key", "--tls-client-ca", "--health-listen"]) {
    assert.ok(help.includes(flag), `tandem-worker --help does not know ${flag}`);
  }
});

test("every file the Dockerfiles copy exists after the build", () => {
  for (const file of ["worker.Dockerfile", "server.Dockerfile"]) {
    const text = readFileSync(path.join(root, "deploy/images", file), "utf8");
    assert.match(text, /^FROM debian:12-slim$/m, `${file} builds on the build machine's distribution`);
    for (const [, source] of text.matchAll(/^COPY (\S+) \S+$/gm)) {
      // artifacts/ is the publish output the file's header gives the command for.
      if (source.startsWith("artifacts/")) continue;
      assert.ok(existsSync(path.join(root, source)), `${file} copies ${source}, which is missing`);
    }
    const entry = text.match(/^ENTRYPOINT \["([^"]+)"/m)[1];
    assert.ok(text.includes(entry.replace(/^\/app\/.*/, "/app/")) , `${file}'s entry point is copied in`);
  }
});
