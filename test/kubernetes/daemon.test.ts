// The daemon's Kubernetes side against a real kube-apiserver (etcd, token
// auth, the Node and RBAC authorizers), the daemon running as the eniway
// ServiceAccount with a TokenRequest token, CNI calls through the built
// plugin: the Node's annotation, condition and max-pods warning, the
// conflist written once ready, Events, the release of IPs whose pod is gone
// (and nothing released while the API server is away), StatefulSet IPs held
// across a re-create, `eniway mapping`, and least privilege.

import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthorizationV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILT } from "../../lib/process.js";
import { CONFLIST_NAME } from "../../src/daemon/conflist.js";
import { SERVICE_ACCOUNT } from "../../src/sandbox/controlplane.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { type KubeSandbox, kubeSandbox, until } from "./helpers.js";

const PREFIX = `ewk${process.pid % 100000}`;
const GRACE_S = 3;
const CHECK_S = 1;

function cli(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BUILT.cli, ...args], (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout });
    });
  });
}

describe("the daemon's Kubernetes side, against a real API server", () => {
  let k: KubeSandbox;
  let confDir: string;
  /** The daemon's log (byte offsets) while the API server was restarted. */
  const restart = { from: 0, to: 0 };
  const daemonLog = (): string => join(k.node.socket, "..", "daemon.log");
  const logSize = async (): Promise<number> => (await stat(daemonLog())).size;

  beforeAll(async () => {
    confDir = await mkdtemp(join(tmpdir(), "eniway-k8s-conf-"));
    k = await kubeSandbox({
      prefix: PREFIX,
      world: sandboxWorld(1, PREFIX),
      sets: [
        `kubernetes.releaseGraceSeconds=${GRACE_S}`,
        `kubernetes.checkSeconds=${CHECK_S}`,
        "pool.minIdle=3",
        "pool.cooldownSeconds=30",
        "pool.statefulHoldSeconds=120",
        `cni.confDir=${confDir}`,
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await k?.close();
    if (confDir) await rm(confDir, { recursive: true, force: true });
  }, 60_000);

  it("records the control plane in sandbox.json, and the daemon runs as the eniway ServiceAccount", async () => {
    const file = JSON.parse(await readFile(join(k.node.socket, "..", "..", "sandbox.json"), "utf8")) as {
      kubernetes?: { server: string; kubeconfig: string };
      nodes: { nodeName?: string }[];
    };
    expect(file.kubernetes?.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(file.kubernetes?.kubeconfig).toBe(k.sb.file.kubernetes?.kubeconfig);
    expect(file.nodes[0]?.nodeName).toBe(k.node.nodeName);
    const kubeconfig = await readFile(join(k.node.socket, "..", "kubeconfig"), "utf8");
    expect(kubeconfig).toContain("user: kube-system:eniway");
    expect(kubeconfig).not.toContain(
      await readFile(join(k.sb.file.kubernetes!.kubeconfig), "utf8").then((t) => /token: (\S+)/.exec(t)![1]!),
    );
  });

  it("annotates the Node with its pod IP capacity, sets ENIPoolReady and warns about the kubelet's max-pods", async () => {
    const node = await until("the max-pods annotation", async () => {
      const n = await k.core.readNode({ name: k.node.nodeName! });
      return n.metadata?.annotations?.["eniway.io/max-pods"] ? n : null;
    });
    // The sandbox's ecs.g7.large: 3 ENIs (2 secondary) × 6 IPs.
    expect(node.metadata?.annotations?.["eniway.io/max-pods"]).toBe("12");
    const cond = await until("the ENIPoolReady condition", async () => {
      const n = await k.core.readNodeStatus({ name: k.node.nodeName! });
      return n.status?.conditions?.find((c) => c.type === "ENIPoolReady");
    });
    expect(cond).toMatchObject({ status: "True", reason: "PoolReady" });
    // The Node was registered with capacity.pods 110 > 12.
    const events = await until("the max-pods warning", async () => {
      const e = await k.events("Node", k.node.nodeName!);
      return e.has("MaxPodsExceedsENICapacity") ? e : null;
    });
    expect(events.get("MaxPodsExceedsENICapacity")?.message).toMatch(/allows 110 pods .* hold 12 pod IPs/);
  });

  it("writes 10-eniway.conflist, chained with portmap and bandwidth, only once the daemon is ready", async () => {
    const conf = JSON.parse(await readFile(join(confDir, CONFLIST_NAME), "utf8")) as {
      plugins: { type: string; socket?: string; capabilities?: Record<string, boolean> }[];
    };
    expect(conf.plugins.map((p) => p.type)).toEqual(["eniway", "portmap", "bandwidth"]);
    expect(conf.plugins[0]?.socket).toBe(k.node.socket);
    expect(conf.plugins[1]?.capabilities).toEqual({ portMappings: true });
    expect(conf.plugins[2]?.capabilities).toEqual({ bandwidth: true });
    const log = (await readFile(join(k.sb.file.nodes[0]!.socket, "..", "daemon.log"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(log.indexOf("CNI config written")).toBeGreaterThan(log.indexOf("node ready"));
    expect(log.indexOf("node ready")).toBeGreaterThanOrEqual(0);
  });

  it("says AllocIPSucceeded on the pod with its IP and ENI", async () => {
    const uid = await k.createPod("hello");
    const r = await k.add({ name: "hello", uid });
    expect(r.code, r.out).toBe(0);
    const events = await until("AllocIPSucceeded", async () => {
      const e = await k.events("Pod", "hello");
      return e.has("AllocIPSucceeded") ? e : null;
    });
    expect(events.get("AllocIPSucceeded")?.message).toMatch(
      new RegExp(`allocated ${r.ip.replace(/\./g, "\\.")} on eni-\\S+ in \\d+ ms`),
    );
  });

  it("releases the IP of a pod deleted without a DEL within the grace and one check, and says so on the Node", async () => {
    const uid = await k.createPod("orphan");
    const r = await k.add({ name: "orphan", uid });
    expect(r.code, r.out).toBe(0);
    await new Promise((res) => setTimeout(res, GRACE_S * 1000)); // older than the grace
    const t0 = Date.now();
    await k.deletePod("orphan");
    await until("the release", async () => !(await k.allocations()).some((a) => a.ip === r.ip), 20_000);
    const ms = Date.now() - t0;
    console.log(`pod deletion → release: ${ms} ms (grace ${GRACE_S} s, check every ${CHECK_S} s)`);
    expect(ms, "released before the grace").toBeGreaterThanOrEqual(GRACE_S * 1000 - 200);
    expect(await k.ipPhase(r.ip), "the released IP cools").toBe("cooling");
    // The counter follows the release's store write a moment later: wait for it rather than race it.
    await until("the release counted", async () => (await k.stats()).releasedPodGone >= 1);
    const events = await until("IPReleasedPodGone", async () => {
      const e = await k.events("Node", k.node.nodeName!);
      return e.has("IPReleasedPodGone") ? e : null;
    });
    expect(events.get("IPReleasedPodGone")?.message).toContain(r.ip);
  });

  it("never releases an IP whose pod is still there, or a young one whose pod was never seen", async () => {
    const uid = await k.createPod("stays");
    const kept = await k.add({ name: "stays", uid });
    const young = await k.add({ name: "ghost", uid: "00000000-0000-0000-0000-000000000001" });
    expect(kept.code).toBe(0);
    expect(young.code).toBe(0);
    await new Promise((res) => setTimeout(res, (GRACE_S - 1) * 1000));
    const ips = (await k.allocations()).map((a) => a.ip);
    expect(ips).toContain(kept.ip);
    expect(ips).toContain(young.ip);
    // The ghost is older than the grace now and NotFound: it goes.
    await until(
      "the ghost's release",
      async () => !(await k.allocations()).some((a) => a.ip === young.ip),
      20_000,
    );
    await new Promise((res) => setTimeout(res, (GRACE_S + CHECK_S) * 1000));
    expect((await k.allocations()).map((a) => a.ip)).toContain(kept.ip);
  });

  it("releases nothing while the API server is down, serves ADD and DEL all the same, and resumes the watch through 410 Gone", async () => {
    const uid = await k.createPod("during");
    const r = await k.add({ name: "during", uid });
    expect(r.code, r.out).toBe(0);
    const before = await k.stats();
    await k.deletePod("during");
    // A write after the daemon's last pod event: the restarted server's watch cache starts past the
    // daemon's resourceVersion, so its next watch is answered 410 Gone and it must list again.
    await k.core.createNamespacedConfigMap({ namespace: "default", body: { metadata: { name: "bump" } } });
    restart.from = await logSize();
    await k.sb.controlPlane!.stopApiServer();
    try {
      await new Promise((res) => setTimeout(res, (GRACE_S + 3 * CHECK_S) * 1000));
      expect((await k.allocations()).map((a) => a.ip)).toContain(r.ip);
      const add = await k.add({
        name: "offline",
        uid: "00000000-0000-0000-0000-000000000002",
        containerId: "ctr-offline",
      });
      expect(add.code, add.out).toBe(0);
      const del = await k.del("ctr-offline");
      expect(del.code, del.out).toBe(0);
    } finally {
      await k.sb.controlPlane!.startApiServer();
    }
    await until(
      "the release after the API server is back",
      async () => !(await k.allocations()).some((a) => a.ip === r.ip),
      60_000,
    );
    // The watch is back when a pod created now reaches the cache.
    const podsBefore = (await k.stats()).informer.pods;
    await k.createPod("after-restart");
    const after = await until(
      "the watch to resume",
      async () => {
        const s = await k.stats();
        return s.informer.watching && s.informer.pods > podsBefore ? s : null;
      },
      60_000,
    );
    restart.to = await logSize();
    expect(after.informer.failures).toBeGreaterThan(before.informer.failures);
    expect(after.informer.relists).toBeGreaterThan(before.informer.relists);
    expect(after.informer.lists).toBeGreaterThan(before.informer.lists);
    console.log("informer across the API server restart:", before.informer, "→", after.informer);
  }, 150_000);

  it("gives a StatefulSet pod its IP back when it returns under the same name; a Deployment pod gets another", async () => {
    const uid1 = await k.createPod("web-0", "StatefulSet");
    const first = await k.add({ name: "web-0", uid: uid1, containerId: "ctr-web-0-a" });
    expect(first.code, first.out).toBe(0);
    expect((await k.del("ctr-web-0-a")).code).toBe(0);
    await k.deletePod("web-0");
    const uid2 = await k.createPod("web-0", "StatefulSet");
    expect(uid2).not.toBe(uid1);
    const again = await k.add({ name: "web-0", uid: uid2, containerId: "ctr-web-0-b" });
    expect(again.code, again.out).toBe(0);
    expect(again.ip).toBe(first.ip);

    const uid3 = await k.createPod("api-7d9f-x1", "ReplicaSet");
    const d1 = await k.add({ name: "api-7d9f-x1", uid: uid3, containerId: "ctr-api-a" });
    expect((await k.del("ctr-api-a")).code).toBe(0);
    expect(await k.ipPhase(d1.ip)).toBe("cooling");
    await k.deletePod("api-7d9f-x1");
    const uid4 = await k.createPod("api-7d9f-x1", "ReplicaSet");
    const d2 = await k.add({ name: "api-7d9f-x1", uid: uid4, containerId: "ctr-api-b" });
    expect(d2.code, d2.out).toBe(0);
    expect(d2.ip).not.toBe(d1.ip);
  });

  it("`eniway mapping` agrees with the API server and the cloud, and exits 1 on a pod the API server does not know", async () => {
    const ok = await until("a clean mapping", async () => {
      const r = await cli(["mapping", "--socket", k.node.socket, "--json"]);
      return r.code === 0 ? r : null;
    });
    const m = JSON.parse(ok.out) as { kubernetes: boolean; rows: { problem: string }[]; problems: number };
    expect(m.kubernetes).toBe(true);
    expect(m.problems).toBe(0);
    const stray = await k.add({
      name: "stray",
      uid: "00000000-0000-0000-0000-000000000003",
      containerId: "ctr-stray",
    });
    expect(stray.code).toBe(0);
    const bad = await cli(["mapping", "--socket", k.node.socket]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(
      new RegExp(`${stray.ip.replace(/\./g, "\\.")} .*its pod is not in the API server`),
    );
    await k.del("ctr-stray");
  });

  it("runs on least privilege: no request of the daemon was refused, and it cannot read Secrets or change pods", async () => {
    const authz = k.admin.makeApiClient(AuthorizationV1Api);
    const user = `system:serviceaccount:${SERVICE_ACCOUNT.namespace}:${SERVICE_ACCOUNT.name}`;
    const can = async (
      verb: string,
      resource: string,
      subresource = "",
      namespace = "default",
    ): Promise<boolean> => {
      const r = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user,
            groups: [
              "system:serviceaccounts",
              `system:serviceaccounts:${SERVICE_ACCOUNT.namespace}`,
              "system:authenticated",
            ],
            resourceAttributes: { verb, resource, subresource, namespace },
          },
        },
      });
      return r.status?.allowed === true;
    };
    for (const [verb, resource, sub] of [
      ["list", "pods"],
      ["watch", "pods"],
      ["get", "pods"],
      ["patch", "nodes"],
      ["patch", "nodes", "status"],
      ["create", "events"],
      ["patch", "events"],
    ] as const)
      expect(await can(verb, resource, sub ?? ""), `${verb} ${resource}/${sub ?? ""}`).toBe(true);
    for (const [verb, resource, sub] of [
      ["get", "secrets"],
      ["list", "secrets"],
      ["delete", "pods"],
      ["patch", "pods"],
      ["create", "pods"],
      ["update", "nodes"],
      ["delete", "nodes"],
      ["patch", "configmaps"],
      ["get", "configmaps"],
      ["create", "serviceaccounts", "token"],
      ["delete", "events"],
    ] as const)
      expect(await can(verb, resource, sub ?? ""), `${verb} ${resource}/${sub ?? ""}`).toBe(false);
    // A restarted API server may refuse requests for a moment until its RBAC caches fill (seen:
    // one "Forbidden" watch, retried): the daemon's log is read around that window.
    const log = await readFile(daemonLog());
    const outside = Buffer.concat([log.subarray(0, restart.from), log.subarray(restart.to)]).toString();
    expect(restart.to).toBeGreaterThan(restart.from);
    expect(outside).not.toMatch(/HTTP 403|forbidden/i);
    const s = await k.stats();
    console.log("API requests by kind over the whole scenario:", s.requests);
  });
});
