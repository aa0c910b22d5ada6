// NetworkPolicy enforced by the daemon against a real API server: policies,
// namespaces and pods are API objects, pods get their addresses by CNI ADD
// through the built plugin, and probes run inside the pods' namespaces.
// Deny-all, a namespaceSelector on a named port, a new pod held by the gate
// or isolated as its ADD returns, the node's own traffic, a policy deleted,
// the daemon killed and restarted (the rules stay, a denied flow never
// passes), the API server stopped (the rules stay) and a pod added by a
// daemon that cannot read the cluster (held until it can).

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { join } from "node:path";
import {
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1NetworkPolicy,
} from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { socketRequest } from "../../lib/http.js";
import { BUILT } from "../../lib/process.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { sh } from "../helpers/netns.js";
import { type Agent, startAgent } from "../policy/probe.js";
import { type KubeSandbox, kubeSandbox, until } from "./helpers.js";

const P = `ewkp${process.pid % 10000}`;
const PORTS = [80, 81];
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

interface Pod {
  ip: string;
  agent: Agent;
}

describe("NetworkPolicy on a node, against a real API server", () => {
  let k: KubeSandbox;
  let net: NetworkingV1Api;
  const pods = new Map<string, Pod>();
  let node: Agent;
  /** The daemon started again by the test: the sandbox does not know it. */
  let restarted: ChildProcess | null = null;

  const addPod = async (namespace: string, name: string, labels: Record<string, string>): Promise<Pod> => {
    // Admission reads ServiceAccounts from its cache: a namespace's new one may take a moment to show.
    const uid = await until(`pod ${namespace}/${name} created`, () =>
      k
        .createPod(name, null, { namespace, labels, ports: [{ name: "http", containerPort: 80 }] })
        .catch((e: Error) => {
          if (/serviceaccount .* not found/.test(e.message)) return null;
          throw e;
        }),
    );
    const r = await k.add({ name, uid, namespace });
    expect(r.code, r.out).toBe(0);
    const pod = { ip: r.ip, agent: await startAgent(r.netns, PORTS) };
    pods.set(name, pod);
    return pod;
  };
  const reach = (from: string | Agent, to: string, port = 80): Promise<boolean> =>
    (typeof from === "string" ? pods.get(from)!.agent : from).probe({
      dst: pods.get(to)!.ip,
      protocol: "TCP",
      port,
    });
  const isolatedIn = (): string =>
    sh("ip", "netns", "exec", k.node.netns, "nft", "list", "set", "inet", "eniway", "in_isolated");
  /** One reading of the table: the addresses admitted through the gate, and those isolated for ingress. */
  const gateAndIsolated = (): { admitted: string; isolated: string } => {
    const table = sh("ip", "netns", "exec", k.node.netns, "nft", "list", "table", "inet", "eniway");
    const set = (name: string): string => new RegExp(`set ${name} \\{[^}]*\\}`).exec(table)?.[0] ?? "";
    return { admitted: set("admitted"), isolated: set("in_isolated") };
  };
  const cli = (...args: string[]): string =>
    execFileSync(process.execPath, [BUILT.cli, ...args, "--socket", k.node.socket]).toString();
  /** Stops the daemon the test runs (or the sandbox's) and starts it again; resolves once it is ready. */
  const restartDaemon = async (signal: NodeJS.Signals): Promise<void> => {
    if (restarted && restarted.exitCode === null) {
      const r = restarted;
      r.kill(signal);
      await new Promise((done) => r.once("exit", done));
    } else process.kill(k.sb.file.pids[0]!, signal);
    const dir = join(k.node.socket, "..");
    const log = await open(join(dir, "daemon.log"), "a");
    restarted = spawn(process.execPath, [BUILT.cli, "daemon", "--config", join(dir, "config.json")], {
      stdio: ["ignore", log.fd, log.fd],
    });
    await log.close();
    await until("the daemon ready again", async () => {
      const r = await socketRequest(k.node.socket, "GET", "/readyz", undefined, 1000).catch(() => null);
      return r?.status === 200;
    });
  };
  const createPolicy = (namespace: string, body: V1NetworkPolicy) =>
    net.createNamespacedNetworkPolicy({ namespace, body });

  beforeAll(async () => {
    k = await kubeSandbox({ prefix: P, world: sandboxWorld(1, P), sets: ["pool.minIdle=4"] });
    net = k.admin.makeApiClient(NetworkingV1Api);
    for (const [name, team] of [
      ["team-a", "a"],
      ["team-b", "b"],
    ] as const) {
      await k.core.createNamespace({ body: { metadata: { name, labels: { team } } } });
      // No controller-manager makes a namespace's default ServiceAccount here; pods need one.
      await k.core.createNamespacedServiceAccount({
        namespace: name,
        body: { metadata: { name: "default" } },
      });
    }
    await addPod("default", "server", { app: "server" });
    await addPod("team-a", "client-a", { app: "client" });
    await addPod("team-b", "client-b", { app: "client" });
    node = await startAgent(k.node.netns, []);
  }, 120_000);

  afterAll(async () => {
    for (const p of pods.values()) p.agent.child.kill();
    node?.child.kill();
    if (restarted && restarted.exitCode === null) {
      restarted.kill("SIGTERM");
      await new Promise((r) => restarted!.once("exit", r));
    }
    await k?.close();
  }, 60_000);

  it("without a policy every pod reaches the server", async () => {
    await until("the daemon's first rule set", async () => {
      try {
        return isolatedIn().includes("in_isolated");
      } catch {
        return false; // no table yet
      }
    });
    expect(await reach("client-a", "server")).toBe(true);
    expect(await reach("client-b", "server", 81)).toBe(true);
  });

  it("a pod event that changes nothing the rules read compiles nothing; a label change does", async () => {
    const compiles = async (): Promise<number> =>
      Number(
        /^eniway_policy_compiles_total (\d+)$/m.exec(
          await (await fetch(`${k.node.http}/metrics`)).text(),
        )?.[1],
      );
    // A pod object with an address but no ADD here: to the rules, a peer like another node's pod.
    await k.createPod("elsewhere", null, { namespace: "default", labels: { app: "peer" } });
    const patch = (body: object) =>
      k.core.patchNamespacedPod({ name: "elsewhere", namespace: "default", body }, mergePatch);
    await k.core.patchNamespacedPodStatus(
      {
        name: "elsewhere",
        namespace: "default",
        body: { status: { podIP: "10.99.0.7", podIPs: [{ ip: "10.99.0.7" }] } },
      },
      mergePatch,
    );
    await until("the pod's address compiled", async () => (await compiles()) > 0);
    await new Promise((r) => setTimeout(r, 500));
    const before = await compiles();
    for (let i = 0; i < 5; i++) {
      await patch({ metadata: { annotations: { note: String(i) } } }); // neither labels, address nor ports
      await new Promise((r) => setTimeout(r, 200)); // apart, so that no two would share one compile
    }
    await patch({ metadata: { labels: { app: "peer", tier: "web" } } });
    await until("the label change compiled", async () => (await compiles()) > before);
    await new Promise((r) => setTimeout(r, 500));
    expect((await compiles()) - before).toBe(1);
    await k.deletePod("elsewhere");
  });

  it("deny-all isolates the namespace's pods; the node still reaches them (kubelet probes)", async () => {
    await createPolicy("default", { metadata: { name: "deny" }, spec: { podSelector: {} } });
    await until("the server isolated", async () => isolatedIn().includes(pods.get("server")!.ip));
    expect(await reach("client-a", "server")).toBe(false);
    expect(await reach("client-b", "server")).toBe(false);
    expect(await reach(node, "server")).toBe(true);
    expect(await reach("server", "client-a")).toBe(true); // egress is not isolated
  });

  it("a namespaceSelector on a named port admits only that namespace, only on that port", async () => {
    await createPolicy("default", {
      metadata: { name: "team-a-http" },
      spec: {
        podSelector: { matchLabels: { app: "server" } },
        ingress: [
          { _from: [{ namespaceSelector: { matchLabels: { team: "a" } } }], ports: [{ port: "http" }] },
        ],
      },
    });
    await until("team-a admitted", () => reach("client-a", "server"));
    expect(await reach("client-a", "server", 81)).toBe(false);
    expect(await reach("client-b", "server")).toBe(false);
    // What the operator reads: the rule, its peers (team-a's pod), the named port resolved, the drops.
    const text = cli("policy", "default/server");
    expect(text).toContain(`pod default/server (${pods.get("server")!.ip})`);
    expect(text).toMatch(/Ingress: isolated; [1-9]\d* packet\(s\) dropped/);
    expect(text).toContain(`default/team-a-http ingress 0: ${pods.get("client-a")!.ip} on TCP/80`);
    expect(text).toContain("Egress: not isolated");
    // And the dashboard's snapshot.
    const d = (await (await fetch(`${k.node.http}/dashboard/data`)).json()) as {
      policy: {
        synced: boolean;
        policies: number;
        isolated: { ingress: number };
        dropped: { ingress: number };
      };
    };
    expect(d.policy).toMatchObject({ synced: true, policies: 2, isolated: { ingress: 1 } });
    expect(d.policy.dropped.ingress).toBeGreaterThan(0);
  });

  it("a pod the API server does not know is held, told in a Warning Event, and let in once it appears", async () => {
    // An ADD that names no UID (an empty K8S_POD_UID): any incarnation of the name is the pod.
    const r = await k.add({ name: "ghost", uid: "" });
    expect(r.code, r.out).toBe(0);
    const agent = await startAgent(r.netns, PORTS);
    pods.set("ghost", { ip: r.ip, agent });
    expect(await reach(node, "ghost"), "the node's probes").toBe(true);
    expect(await reach("client-a", "ghost")).toBe(false);
    expect(cli("policy", "default/ghost")).toMatch(/Held: .*the API server does not know the pod/);
    const events = await until(
      "the Event on the held pod",
      async () => {
        const e = await k.events("Pod", "ghost");
        return e.has("NetworkPolicyPending") ? e : null;
      },
      30_000,
    );
    expect(events.get("NetworkPolicyPending")?.message).toMatch(
      /traffic is dropped until .* does not know the pod/,
    );
    // The pod object appears (its labels known): admitted under the namespace's deny-all.
    await k.createPod("ghost", null, { labels: { app: "ghost" } });
    await until("admitted", async () => gateAndIsolated().admitted.includes(` . ${r.ip}`));
    expect(gateAndIsolated().isolated).toContain(r.ip);
    expect(await reach("client-a", "ghost")).toBe(false);
    expect(await reach(node, "ghost")).toBe(true);
    expect(cli("policy", "default/ghost")).not.toContain("Held:");
  });

  it("a pod object of the same name but another UID is not the pod the ADD named: it stays held", async () => {
    await k.createPod("twin", null, { labels: { app: "server" } }); // another incarnation, as the API server has it
    const r = await k.add({
      name: "twin",
      uid: "11111111-2222-4333-8444-555555555555",
      containerId: "ctr-twin",
    });
    expect(r.code, r.out).toBe(0);
    await new Promise((res) => setTimeout(res, 1000));
    expect(gateAndIsolated().admitted).not.toContain(` . ${r.ip}`);
    expect(cli("policy", "default/twin")).toMatch(/Held: .*does not know the pod/);
    expect((await k.del("ctr-twin")).code).toBe(0);
    await k.deletePod("twin");
  });

  it("a policy that cannot be enforced as written gets a Warning Event and opens nothing", async () => {
    await createPolicy("default", {
      metadata: { name: "v6" },
      spec: {
        podSelector: { matchLabels: { app: "server" } },
        ingress: [{ _from: [{ ipBlock: { cidr: "fd00::/64" } }] }],
      },
    });
    const events = await until("the Event on the policy", async () => {
      const e = await k.events("NetworkPolicy", "v6");
      return e.size ? e : null;
    });
    expect(events.get("NetworkPolicyNotEnforced")?.message).toMatch(
      /ipBlock fd00::\/64 is not IPv4; it allows nothing/,
    );
    expect(await reach("client-b", "server")).toBe(false);
    await net.deleteNamespacedNetworkPolicy({ namespace: "default", name: "v6" });
  });

  it("a new pod in the isolated namespace is held or isolated as its ADD returns, then isolated", async () => {
    const uid = await k.createPod("late", null, { labels: { app: "late" } });
    const r = await k.add({ name: "late", uid });
    expect(r.code, r.out).toBe(0);
    const atAdd = gateAndIsolated();
    // Held by the gate (its traffic dropped) until its rules are in, and they come in one transaction.
    if (atAdd.admitted.includes(` . ${r.ip}`))
      expect(atAdd.isolated, "admitted, so isolated").toContain(r.ip);
    await until("admitted under its rules", async () => gateAndIsolated().admitted.includes(` . ${r.ip}`));
    expect(gateAndIsolated().isolated).toContain(r.ip);
    const agent = await startAgent(r.netns, PORTS);
    pods.set("late", { ip: r.ip, agent });
    expect(await reach("client-a", "late")).toBe(false);
    expect(await reach(node, "late")).toBe(true);
  });

  it("the daemon killed and restarted: the rules stay, a denied flow never passes, an allowed one keeps working", async () => {
    let watching = true;
    const denied: Promise<boolean>[] = [];
    const allowed: Promise<boolean>[] = [];
    const probing = (async () => {
      while (watching) {
        denied.push(reach("client-b", "server"));
        allowed.push(reach("client-a", "server"));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const restarting = restartDaemon("SIGKILL");
    await new Promise((r) => setTimeout(r, 1500));
    expect(isolatedIn()).toContain(pods.get("server")!.ip);
    await restarting;
    await new Promise((r) => setTimeout(r, 1500));
    watching = false;
    await probing;
    expect((await Promise.all(denied)).filter(Boolean)).toEqual([]);
    expect((await Promise.all(allowed)).every(Boolean)).toBe(true);
    expect(denied.length).toBeGreaterThan(20);
  });

  it("the API server stopped: the rules stay; a pod added by a daemon restarted meanwhile is held until it is back", async () => {
    const uid = await k.createPod("newcomer", null, {
      namespace: "team-a",
      labels: { app: "client" },
      ports: [{ name: "http", containerPort: 80 }],
    });
    await k.sb.controlPlane!.stopApiServer();
    try {
      await new Promise((r) => setTimeout(r, 2000));
      expect(await reach("client-b", "server")).toBe(false);
      expect(await reach("client-a", "server")).toBe(true);
      await restartDaemon("SIGTERM");
      expect(await reach("client-b", "server"), "the last rules, after the restart").toBe(false);
      const r = await k.add({ name: "newcomer", uid, namespace: "team-a" });
      expect(r.code, r.out).toBe(0);
      pods.set("newcomer", { ip: r.ip, agent: await startAgent(r.netns, PORTS) });
      expect(await reach("client-a", "newcomer"), "to the held pod").toBe(false);
      expect(await reach("newcomer", "client-a"), "from the held pod").toBe(false);
      expect(await reach(node, "newcomer"), "the node's probes").toBe(true);
      expect(cli("policy", "team-a/newcomer")).toMatch(
        /Held: every packet from and to it is dropped .*API server/,
      );
      const metrics = await (await fetch(`${k.node.http}/metrics`)).text();
      expect(metrics).toMatch(/^eniway_policy_pending_pods 1$/m);
    } finally {
      await k.sb.controlPlane!.startApiServer();
    }
    await until("the held pod admitted", () => reach("client-a", "newcomer"), 60_000);
    expect(await reach("newcomer", "client-a")).toBe(true);
    await net.deleteNamespacedNetworkPolicy({ namespace: "default", name: "deny" });
    await net.deleteNamespacedNetworkPolicy({ namespace: "default", name: "team-a-http" });
    await until("the baseline back", () => reach("client-b", "server"), 60_000);
    expect(isolatedIn()).not.toContain(pods.get("server")!.ip);
  });
});
