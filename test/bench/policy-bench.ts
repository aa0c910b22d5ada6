// NetworkPolicy at scale against a real kube-apiserver: 1,000 pod objects
// (with addresses, in 10 namespaces) and 200 policies. Programming latency:
// a policy changed in the API server → the daemon's rules carry the change
// (read back from the daemon, right after the kernel took it). The ADD's
// extra cost: ADD through the plugin of a pod the policies isolate, with the
// 200 policies vs none, end to end and inside the daemon; and how long such a
// pod is held by the gate after its ADD until its rules are in (the
// daemon's eniway_policy_pod_held_seconds). Throughput: TCP
// between two pods of the node (iperf3) with the 200 policies vs none.

import { execFile, spawn } from "node:child_process";
import {
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1NetworkPolicy,
} from "@kubernetes/client-node";
import { socketRequest } from "../../lib/http.js";
import type { KubeSandbox } from "../kubernetes/helpers.js";
import { kubeSandbox, until } from "../kubernetes/helpers.js";
import { benchWorld } from "./kube-bench.js";

export interface PolicyFigures {
  pods: number;
  policies: number;
  /** nft rules on the node (pods are set elements, not rules). */
  rules: number;
  programmingMs: { p50: number; p99: number; n: number };
  addP50Ms: { withPolicies: number; without: number; extra: number; n: number };
  /** The same ADDs as the daemon served them (its request histogram): mean ms. */
  daemonAddMeanMs: { withPolicies: number; without: number; extra: number };
  /** From the pod's address to its rules in the kernel (its traffic held): the daemon's mean over the same ADDs. */
  heldMeanMs: { withPolicies: number; without: number };
  throughputGbps: { withPolicies: number; without: number; ratio: number };
  /** What one pod change costs the API server per node: the pod as JSON, sent on every node's watch. */
  podObjectBytes: number;
  /** The daemon's resident memory at the end, its caches holding the 1,000 pods and 200 policies (MiB). */
  daemonRssMiB: number;
}

const NAMESPACES = 10;
const IPERF_PORT = 5201;
const APPS = 50;
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return +(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0).toFixed(1);
};

/** Runs `work` over items, `n` at a time. */
async function pooled<T>(items: T[], n: number, work: (t: T) => Promise<unknown>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) await work(t);
    }),
  );
}

/** Policy j: app-(j % 50) pods in ns-(j % 10) admit team (j+1) % 10's app-(j+3) % 50 pods on http, iperf3's port and 9000 + rev. */
const policyOf = (j: number, rev = 0): V1NetworkPolicy => ({
  metadata: { name: `p-${j}` },
  spec: {
    podSelector: { matchLabels: { app: `app-${j % APPS}` } },
    ingress: [
      {
        _from: [
          {
            namespaceSelector: { matchLabels: { team: String((j + 1) % NAMESPACES) } },
            podSelector: { matchLabels: { app: `app-${(j + 3) % APPS}` } },
          },
        ],
        ports: [{ port: "http" }, { port: IPERF_PORT }, { port: 9000 + rev }],
      },
    ],
  },
});

async function makeCluster(k: KubeSandbox, pods: number): Promise<void> {
  for (let n = 0; n < NAMESPACES; n++) {
    await k.core.createNamespace({ body: { metadata: { name: `ns-${n}`, labels: { team: String(n) } } } });
    await k.core.createNamespacedServiceAccount({
      namespace: `ns-${n}`,
      body: { metadata: { name: "default" } },
    });
  }
  await new Promise((r) => setTimeout(r, 2000)); // admission's ServiceAccount cache
  await pooled([...Array(pods).keys()], 16, async (i) => {
    const namespace = `ns-${i % NAMESPACES}`;
    const name = `obj-${i}`;
    await k.createPod(name, null, {
      namespace,
      labels: { app: `app-${i % APPS}` },
      ports: [{ name: "http", containerPort: 80 }],
    });
    const ip = `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    await k.core.patchNamespacedPodStatus(
      { name, namespace, body: { status: { podIP: ip, podIPs: [{ ip }] } } },
      mergePatch,
    );
  });
}

/** A pod of this node: its object, then ADD through the plugin. */
async function localPod(k: KubeSandbox, namespace: string, name: string, app: string) {
  const uid = await k.createPod(name, null, {
    namespace,
    labels: { app },
    ports: [{ name: "http", containerPort: 80 }],
  });
  const t0 = performance.now();
  const r = await k.add({ name, uid, namespace, containerId: `ctr-${name}` });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`ADD of ${namespace}/${name} failed: ${r.out}`);
  return { ...r, ms, name, namespace };
}

/** A histogram of the daemon's so far (`series`: its name and labels): seconds in all, and how many. */
async function histogram(k: KubeSandbox, series: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${k.node.http}/metrics`)).text();
  const [name, labels = ""] = series.split(/(?=\{)/);
  const escaped = labels.replace(/[{}]/g, "\\$&");
  const get = (what: string): number =>
    Number(new RegExp(`^${name}_${what}${escaped} (\\S+)$`, "m").exec(text)?.[1] ?? 0);
  return { sum: get("sum"), count: get("count") };
}
const ADDS = 'eniway_cni_request_duration_seconds{command="ADD",result="ok"}';
const HELD = "eniway_policy_pod_held_seconds";

/** ADD p50 through the plugin; the mean of the same ADDs inside the daemon, and of their pods' held time (ms). */
async function addCost(
  k: KubeSandbox,
  tag: string,
  n: number,
): Promise<{ p50: number; daemonMean: number; heldMean: number }> {
  const ms: number[] = [];
  const served = { count: 0, sum: 0 };
  const heldBefore = await histogram(k, HELD);
  for (let i = 0; i < n; i++) {
    const before = await histogram(k, ADDS);
    const p = await localPod(k, "ns-0", `add-${tag}-${i}`, "app-0"); // selected by p-0, p-50, …
    const after = await histogram(k, ADDS);
    ms.push(p.ms);
    served.count += after.count - before.count;
    served.sum += after.sum - before.sum;
    // Admitted before its DEL (reading the metrics took longer than that), so its held time counts.
    await until("the pod admitted", async () => (await histogram(k, HELD)).count >= heldBefore.count + i + 1);
    await k.del(`ctr-${p.name}`);
  }
  if (served.count !== n) throw new Error(`the daemon counted ${served.count} ADDs of ${n}`);
  const held = await histogram(k, HELD);
  return {
    p50: pct(ms, 50),
    daemonMean: +((served.sum / n) * 1000).toFixed(2),
    heldMean: +(((held.sum - heldBefore.sum) / (held.count - heldBefore.count)) * 1000).toFixed(2),
  };
}

const explained = async (k: KubeSandbox, pod: string): Promise<string> =>
  JSON.stringify((await socketRequest(k.node.socket, "GET", `/v1/policy?pod=${pod}`, undefined, 5000)).body);

const run = (argv: string[]): Promise<{ ok: boolean; out: string }> =>
  new Promise((resolve) => execFile(argv[0]!, argv.slice(1), (err, out) => resolve({ ok: !err, out })));

/** TCP for 5 s from the client's namespace to the server's address (iperf3), in Gbit/s. */
async function iperf(server: string, client: string, ip: string): Promise<number> {
  const s = spawn("ip", ["netns", "exec", server, "iperf3", "-s", "-1"], { stdio: "ignore" });
  try {
    let said = "";
    for (let attempt = 0; attempt < 10; attempt++) {
      await new Promise((r) => setTimeout(r, 300)); // the server starts listening
      const r = await run([
        "ip",
        "netns",
        "exec",
        client,
        "iperf3",
        "-c",
        ip,
        "-t",
        "5",
        "-J",
        "--connect-timeout",
        "3000",
      ]);
      const doc = JSON.parse(r.out || "{}") as {
        error?: string;
        end?: { sum_received?: { bits_per_second: number } };
      };
      const bps = doc.end?.sum_received?.bits_per_second;
      if (r.ok && bps) return +(bps / 1e9).toFixed(2);
      said = doc.error ?? r.out.slice(0, 200);
    }
    throw new Error(`iperf3 from ${client} to ${ip} failed: ${said}`);
  } finally {
    s.kill();
  }
}

export async function policyBench(
  opts = { pods: 1000, policies: 200, changes: 40, adds: 20 },
): Promise<PolicyFigures> {
  const prefix = `ewpb${process.pid % 10000}`;
  const k = await kubeSandbox({
    prefix,
    world: benchWorld(prefix),
    sets: ["pool.minIdle=30", "pool.maxIdle=60", "pool.cooldownSeconds=0"],
  });
  try {
    const net = k.admin.makeApiClient(NetworkingV1Api);
    await makeCluster(k, opts.pods);
    // Two pods for iperf3: the server is app-3 in ns-3 (policy p-3 admits team 4's app-6 pods), the client such a pod.
    const server = await localPod(k, "ns-3", "iperf-server", "app-3");
    const client = await localPod(k, "ns-4", "iperf-client", "app-6");
    await addCost(k, "warm", opts.adds); // the first ADDs of a daemon are slower (JIT, the pool settling): not counted
    const without = {
      add: await addCost(k, "none", opts.adds),
      tput: await iperf(server.netns, client.netns, server.ip),
    };
    await pooled([...Array(opts.policies).keys()], 16, (j) =>
      net.createNamespacedNetworkPolicy({ namespace: `ns-${j % NAMESPACES}`, body: policyOf(j) }),
    );
    await until(
      "the 200 policies enforced",
      async () => (await explained(k, "ns-3/iperf-server")).includes("p-3"),
      60_000,
    );
    const withAdd = await addCost(k, "all", opts.adds);
    const withTput = await iperf(server.netns, client.netns, server.ip);
    // Programming latency: policy p-3 changed, until the server's rules carry its new port.
    const ms: number[] = [];
    for (let rev = 1; rev <= opts.changes; rev++) {
      const t0 = performance.now();
      await net.replaceNamespacedNetworkPolicy({ name: "p-3", namespace: "ns-3", body: policyOf(3, rev) });
      await until(
        "the change enforced",
        async () => (await explained(k, "ns-3/iperf-server")).includes(`TCP/${9000 + rev}`),
        30_000,
      );
      ms.push(performance.now() - t0);
    }
    const sample = await k.core.readNamespacedPod({ namespace: "ns-0", name: "obj-0" });
    const podObjectBytes = JSON.stringify(sample).length;
    const metrics = await (await fetch(`${k.node.http}/metrics`)).text();
    const rules = Number(/^eniway_policy_rules (\d+)$/m.exec(metrics)?.[1] ?? Number.NaN);
    const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(metrics)?.[1] ?? Number.NaN);
    return {
      pods: opts.pods,
      policies: opts.policies,
      rules,
      programmingMs: { p50: pct(ms, 50), p99: pct(ms, 99), n: ms.length },
      addP50Ms: {
        withPolicies: withAdd.p50,
        without: without.add.p50,
        extra: +(withAdd.p50 - without.add.p50).toFixed(1),
        n: opts.adds,
      },
      daemonAddMeanMs: {
        withPolicies: withAdd.daemonMean,
        without: without.add.daemonMean,
        extra: +(withAdd.daemonMean - without.add.daemonMean).toFixed(2),
      },
      heldMeanMs: { withPolicies: withAdd.heldMean, without: without.add.heldMean },
      throughputGbps: {
        withPolicies: withTput,
        without: without.tput,
        ratio: +(withTput / without.tput).toFixed(3),
      },
      podObjectBytes,
      daemonRssMiB: +(rss / 2 ** 20).toFixed(1),
    };
  } finally {
    await k.close();
  }
}
