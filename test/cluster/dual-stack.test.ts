// Dual stack (IPv4 and IPv6 per pod) on a real Kubernetes 1.20 cluster:
// `sandbox up --cluster --dual-stack` on an IPv6 VPC (fd00:10::/56), the
// IPv6DualStack gate on every component, Services from 10.96.0.0/16 and
// fd00:96::/108, eniway installed with helm with `ipStack: dual`. Pods on
// two nodes get an IPv4 and an IPv6 address of their node's ENIs, reach each
// other over both families through the VPC, and reach a RequireDualStack
// Service through kube-proxy (iptables and ip6tables) over both.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Family, netContains, parseAddr, parseNet } from "../../cloud/simulator/addr.js";
import { HOST_VETH } from "../../cni/facts.js";
import { socketRequest } from "../../lib/http.js";
import { createLogger } from "../../lib/log.js";
import { podNetns } from "../../src/sandbox/cluster.js";
import { type ClusterSandbox, RELEASE_NAMESPACE, sandboxClusterUp } from "../../src/sandbox/clusterup.js";
import { SERVICE_CIDR, SERVICE_CIDR_V6 } from "../../src/sandbox/controlplane.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { samples } from "../helpers/prom.js";
import { type Kube, kube, requireClusterTestTools, sleep } from "./helpers.js";

const PREFIX = `ewds${process.pid % 1000}`;
const VPC_V4 = "10.0.0.0/16";
const VPC_V6 = "fd00:10::/56";
const CNI_ERRORS = ["FailedCreatePodSandBox", "FailedKillPod", "FailedSync", "NetworkNotReady"];

const familyOf = (ip: string): Family => (ip.includes(":") ? 6 : 4);
/** Whether `ip` lies in `cidr` (either family). */
function inCidr(ip: string, cidr: string): boolean {
  const f = familyOf(ip);
  const net = parseNet(cidr, f);
  const v = parseAddr(ip, f);
  if (!net || v === undefined) throw new Error(`not an address and a network of one family: ${ip}, ${cidr}`);
  return netContains(net, v);
}
/** REMOTE_ADDR as busybox httpd (listening on [::]) writes it: "[fd00:10::5]", "[::ffff:10.0.1.5]". */
const peerOf = (remoteAddr: string): string => remoteAddr.replace(/^\[(.*)\]$/, "$1").replace(/^::ffff:/, "");
const netnsList = (): string[] =>
  execFileSync("ip", ["netns", "list"])
    .toString()
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter(Boolean);
const rootLinks = (): string[] =>
  (JSON.parse(execFileSync("ip", ["-j", "link", "show"]).toString()) as { ifname: string }[]).map(
    (l) => l.ifname,
  );
const nodeLinks = (netns: string): string[] =>
  (
    JSON.parse(execFileSync("ip", ["-n", netns, "-j", "link", "show"]).toString()) as { ifname: string }[]
  ).map((l) => l.ifname);
/** iptables-save or ip6tables-save (every table) in a node's namespace. */
const rulesIn = (netns: string, family: Family): string =>
  execFileSync(
    "nsenter",
    [`--net=/run/netns/${netns}`, "--", family === 6 ? "ip6tables-save" : "iptables-save"],
    { encoding: "utf8", timeout: 15_000 },
  );

/**
 * A Deployment of the local busybox image on one node, answering HTTP on
 * 8080 (any address of both families) with its pod name at / and the
 * caller's address at /cgi-bin/ip.
 */
function webOn(o: { name: string; node: string; replicas: number; image: string }): string {
  const script = [
    "mkdir -p /www/cgi-bin",
    "hostname > /www/index.html",
    "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \"$REMOTE_ADDR\"\\n' > /www/cgi-bin/ip",
    "chmod 755 /www/cgi-bin/ip",
    "exec httpd -f -p 8080 -h /www",
  ].join(" && ");
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: o.name, namespace: "default" },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: o.name } },
      template: {
        metadata: { labels: { app: o.name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          automountServiceAccountToken: false,
          nodeSelector: { "kubernetes.io/hostname": o.node },
          containers: [
            {
              name: "web",
              image: o.image,
              imagePullPolicy: "Never",
              command: ["/bin/sh", "-c", script],
              ports: [{ containerPort: 8080 }],
            },
          ],
        },
      },
    },
  });
}

/** A ClusterIP Service of both families (1.20: spec.ipFamilyPolicy and spec.ipFamilies, alpha). */
const dualService = (name: string, app: string): string =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: {
      ipFamilyPolicy: "RequireDualStack",
      selector: { app },
      ports: [{ port: 80, targetPort: 8080 }],
    },
  });

describe("dual stack: IPv4 and IPv6 per pod on a Kubernetes 1.20 cluster of the simulated VPC", () => {
  let dir: string;
  let sb: ClusterSandbox;
  let k: Kube;
  const before = { links: [] as string[] };
  const nodeName = (i: number): string => sb.file.nodes[i]!.nodeName!;
  /** Each address of the pod, by family; both must be there. */
  const addressesOf = (p: V1Pod): { v4: string; v6: string } => {
    const ips = (p.status?.podIPs ?? []).map((x) => x.ip);
    const v4 = ips.filter((ip) => familyOf(ip) === 4);
    const v6 = ips.filter((ip) => familyOf(ip) === 6);
    expect(
      { podIPs: ips, v4: v4.length, v6: v6.length },
      `${p.metadata?.name}: one address of each family`,
    ).toEqual({ podIPs: ips, v4: 1, v6: 1 });
    return { v4: v4[0]!, v6: v6[0]! };
  };
  /** The addresses the cloud has on the instance's secondary ENIs, by family. */
  const cloudAddresses = (instanceId: string): { v4: string[]; v6: string[] } => {
    const inst = sb.sim.state.instances.get(instanceId)!;
    const enis = [...sb.sim.state.enis.values()].filter(
      (e) => e.instanceId === instanceId && e.id !== inst.primaryEniId,
    );
    return { v4: enis.flatMap((e) => e.ips), v6: enis.flatMap((e) => e.ipv6s) };
  };
  const exec = (pod: string, argv: string[]): Promise<string> => k.kubectl(["exec", pod, "--", ...argv]);
  /** Two pings from the pod; when no reply comes, the error has the pod's addresses and routes. */
  const ping = async (pod: string, ip: string): Promise<string> => {
    try {
      return await exec(pod, ["ping", "-c", "2", "-W", "3", ip]);
    } catch (e) {
      const state = await exec(pod, ["sh", "-c", "ip addr; ip route; ip -6 route"]).catch((x: unknown) =>
        String(x),
      );
      throw new Error(`${String(e)}\n${pod}'s addresses and routes:\n${state}`);
    }
  };
  /** An HTTP GET of `path` through nc in the pod: the body's last line ("" when nothing answered). */
  const get = async (pod: string, host: string, port: number, path = "/"): Promise<string> =>
    (
      await exec(pod, [
        "sh",
        "-c",
        'printf "GET $2 HTTP/1.0\\r\\n\\r\\n" | nc -w 3 "$0" "$1"',
        host,
        String(port),
        path,
      ])
    )
      .trim()
      .split("\n")
      .pop() ?? "";

  /**
   * Waits for the pods like k.waitRunning; when they do not run, the error
   * carries what says why: the pods' events and the tail of each eniway
   * daemon's log.
   */
  const running = async (selector: string, count: number): Promise<V1Pod[]> => {
    try {
      return await k.waitRunning(selector, count);
    } catch (e) {
      const events = await k
        .kubectl([
          "get",
          "events",
          "--field-selector",
          "type=Warning",
          "-o",
          "custom-columns=OBJ:.involvedObject.name,REASON:.reason,MSG:.message",
        ])
        .catch((x: unknown) => String(x));
      const daemons = await k.core.listNamespacedPod({
        namespace: RELEASE_NAMESPACE,
        labelSelector: "app.kubernetes.io/name=eniway",
      });
      const logs = await Promise.all(
        daemons.items.map(async (p) => {
          const log = await k
            .kubectl(["-n", RELEASE_NAMESPACE, "logs", "--tail=15", p.metadata!.name!])
            .catch((x: unknown) => String(x));
          return `--- ${p.metadata!.name} on ${p.spec?.nodeName}:\n${log}`;
        }),
      );
      throw new Error(`${String(e)}\nwarnings:\n${events}\n${logs.join("\n")}`);
    }
  };

  beforeAll(async () => {
    requireClusterTestTools();
    before.links = rootLinks();
    dir = await mkdtemp(join(tmpdir(), "eniway-dual-"));
    sb = await sandboxClusterUp({
      dir: join(dir, "sandbox"),
      nodes: 2,
      world: sandboxWorld(2, PREFIX, { hosts: 1, ipv6: true }),
      dualStack: true,
      sets: [
        "pool.minIdle=2",
        "pool.maxIdle=4",
        "pool.cooldownSeconds=1",
        "pool.idleReclaimSeconds=5",
        "kubernetes.releaseGraceSeconds=5",
      ],
      install: false,
      log: createLogger({ level: "warn", base: { component: "dual-stack-test" } }),
    });
    k = kube(sb, dir);
  }, 600_000);

  afterAll(async () => {
    await sb?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    expect(netnsList().filter((n) => n.startsWith(PREFIX))).toEqual([]);
    expect(rootLinks().filter((l) => !before.links.includes(l))).toEqual([]);
  }, 300_000);

  it("the control plane is dual stack: a RequireDualStack Service gets an IPv4 and an IPv6 ClusterIP, and every node's kube-proxy writes them with iptables and ip6tables", async () => {
    // Other Services keep the primary family, IPv4, as in a single-stack cluster.
    const api = await k.core.readNamespacedService({ name: "kubernetes", namespace: "default" });
    expect(api.spec?.ipFamilies).toEqual(["IPv4"]);
    await k.apply("probe-svc", dualService("probe", "nothing"));
    const svc: V1Service = await k.core.readNamespacedService({ name: "probe", namespace: "default" });
    expect(svc.spec?.ipFamilyPolicy).toBe("RequireDualStack");
    expect(svc.spec?.ipFamilies).toEqual(["IPv4", "IPv6"]);
    const [v4, v6] = svc.spec?.clusterIPs ?? [];
    expect(svc.spec?.clusterIPs).toHaveLength(2);
    expect(svc.spec?.clusterIP).toBe(v4);
    expect(inCidr(v4!, SERVICE_CIDR), `${v4} in ${SERVICE_CIDR}`).toBe(true);
    expect(inCidr(v6!, SERVICE_CIDR_V6), `${v6} in ${SERVICE_CIDR_V6}`).toBe(true);
    // An IPv6 single-stack Service is possible too, from the secondary range.
    await k.apply(
      "probe6-svc",
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "probe6", namespace: "default" },
        spec: { ipFamilies: ["IPv6"], selector: { app: "nothing" }, ports: [{ port: 80 }] },
      }),
    );
    const only6 = await k.core.readNamespacedService({ name: "probe6", namespace: "default" });
    expect(only6.spec?.ipFamilyPolicy).toBe("SingleStack");
    expect(only6.spec?.clusterIPs?.map((ip) => inCidr(ip, SERVICE_CIDR_V6))).toEqual([true]);
    // kube-proxy: one proxier per family. A Service without endpoints is a REJECT rule for its IP.
    for (const n of sb.nodes) {
      const deadline = Date.now() + 60_000;
      const has = (): { v4: boolean; v6: boolean; only6: boolean } => {
        const r4 = rulesIn(n.netns, 4);
        const r6 = rulesIn(n.netns, 6);
        return {
          v4: r4.includes(`${v4}/32`),
          v6: r6.includes(`${v6}/128`),
          only6: r6.includes(`${only6.spec!.clusterIP}/128`),
        };
      };
      while (Object.values(has()).includes(false) && Date.now() < deadline) await sleep(500);
      expect(has(), n.name).toEqual({ v4: true, v6: true, only6: true });
      // The IPv6 rules are kube-proxy's chains in ip6tables, not only the Service's address.
      expect(rulesIn(n.netns, 6)).toMatch(/^:KUBE-SERVICES /m);
      const log = readFileSync(join(n.dir, "logs", "kube-proxy.log"), "utf8");
      expect(log, `${n.name}: kube-proxy's log`).not.toMatch(/Failed to execute iptables-restore/);
    }
    await k.kubectl(["delete", "service", "probe", "probe6"]);
  }, 180_000);

  it("helm install with ipStack dual: every eniway pod and node Ready", async () => {
    await sb.release("install");
    const cm = await k.core.readNamespacedConfigMap({ name: "eniway-config", namespace: RELEASE_NAMESPACE });
    expect(JSON.stringify(cm.data)).toContain("ipStack: dual");
    // Each daemon runs dual stack.
    for (const n of sb.file.nodes) {
      const metrics = await fetch(`${n.http}/metrics`).then((res) => res.text());
      const info = samples(metrics, "eniway_pool_info").map((x) => `${x.labels.ip_stack}=${x.value}`);
      expect(info, `${n.name}: eniway_pool_info`).toEqual(["dual=1"]);
    }
    for (const n of (await k.core.listNode()).items) {
      const c = n.status?.conditions?.find((x) => x.type === "ENIPoolReady");
      expect(`${n.metadata?.name} ${c?.status}/${c?.reason}`).toBe(`${n.metadata?.name} True/PoolReady`);
    }
  }, 420_000);

  it("pods on both nodes: status.podIPs holds an IPv4 and an IPv6 address, each of the node's own ENIs in the cloud", async () => {
    await k.apply("srv", webOn({ name: "srv", node: nodeName(1), replicas: 2, image: sb.file.image! }));
    await k.apply("cli", webOn({ name: "cli", node: nodeName(0), replicas: 1, image: sb.file.image! }));
    const pods = [...(await running("app=srv", 2)), ...(await running("app=cli", 1))];
    for (const p of pods) {
      const { v4, v6 } = addressesOf(p);
      // The primary address (status.podIP) is IPv4, the cluster's primary family.
      expect(p.status?.podIP).toBe(v4);
      expect(inCidr(v4, VPC_V4), `${v4} in ${VPC_V4}`).toBe(true);
      expect(inCidr(v6, VPC_V6), `${v6} in ${VPC_V6}`).toBe(true);
      const node = sb.file.nodes.find((n) => n.nodeName === p.spec?.nodeName)!;
      const cloud = cloudAddresses(node.instanceId);
      expect(cloud.v4, `${p.metadata?.name}: ${v4} on ${node.instanceId}'s ENIs`).toContain(v4);
      expect(cloud.v6, `${p.metadata?.name}: ${v6} on ${node.instanceId}'s ENIs`).toContain(v6);
    }
    expect(new Set(pods.map((p) => addressesOf(p).v6)).size).toBe(3);
  }, 300_000);

  it("pod to pod across nodes over IPv6 and IPv4 (ping and HTTP), each side seeing the other's own address", async () => {
    const [srv] = await k.pods("app=srv");
    const [cli] = await k.pods("app=cli");
    const s = { name: srv!.metadata!.name!, ...addressesOf(srv!) };
    const c = { name: cli!.metadata!.name!, ...addressesOf(cli!) };
    for (const fam of ["v6", "v4"] as const) {
      // ping exits non-zero (kubectl exec rejects) unless a reply came.
      expect(await ping(c.name, s[fam])).toMatch(/2 packets received/);
      expect(await ping(s.name, c[fam])).toMatch(/2 packets received/);
      expect(await get(c.name, s[fam], 8080), `${c.name} → ${s[fam]}`).toBe(s.name);
      expect(await get(s.name, c[fam], 8080), `${s.name} → ${c[fam]}`).toBe(c.name);
      // No NAT on the way: node B's pod sees node A's pod's own address of that family.
      expect(peerOf(await get(c.name, s[fam], 8080, "/cgi-bin/ip")), `${s.name} sees`).toBe(c[fam]);
    }
  }, 180_000);

  it("a RequireDualStack Service over node B's pods: an EndpointSlice per family, both ClusterIPs reached through kube-proxy from node A's pod", async () => {
    const srv = await k.pods("app=srv");
    const [cli] = await k.pods("app=cli");
    await k.apply("srv-svc", dualService("srv", "srv"));
    const svc = await k.core.readNamespacedService({ name: "srv", namespace: "default" });
    expect(svc.spec?.ipFamilies).toEqual(["IPv4", "IPv6"]);
    const [ip4, ip6] = svc.spec!.clusterIPs!;
    // The endpoint slice controller (with the gate) makes one slice per family, with the pods' addresses.
    const deadline = Date.now() + 60_000;
    const slices = async (): Promise<Record<string, string[]>> => {
      const out = await k.kubectl([
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=srv",
        "-o",
        "json",
      ]);
      const list = JSON.parse(out) as {
        items: { addressType: string; endpoints?: { addresses: string[] }[] }[];
      };
      const by: Record<string, string[]> = {};
      for (const s of list.items)
        by[s.addressType] = [
          ...(by[s.addressType] ?? []),
          ...(s.endpoints ?? []).flatMap((e) => e.addresses),
        ];
      for (const a of Object.values(by)) a.sort();
      return by;
    };
    const want = {
      IPv4: srv.map((p) => addressesOf(p).v4).sort(),
      IPv6: srv.map((p) => addressesOf(p).v6).sort(),
    };
    const t0 = Date.now();
    while (JSON.stringify(await slices()) !== JSON.stringify(want) && Date.now() < deadline) await sleep(500);
    expect(await slices()).toEqual(want);
    console.log(`figure: RequireDualStack Service → both EndpointSlices: ${Date.now() - t0} ms`);
    // Both of node B's pods answer on each ClusterIP, from node A's pod; once kube-proxy has
    // them, every connection is answered.
    const servers = srv.map((p) => p.metadata!.name!).sort();
    for (const ip of [ip6!, ip4!]) {
      const started = Date.now();
      const tries: string[] = [];
      const answered = (): string[] => [...new Set(tries.filter(Boolean))].sort();
      while (answered().length < 2 && Date.now() < started + 60_000)
        tries.push(await get(cli!.metadata!.name!, ip, 80).catch(() => ""));
      expect(answered(), `through ${ip}`).toEqual(servers);
      console.log(
        `figure: ${ip} → both of node B's pods: ${Date.now() - started} ms, ${tries.length} tries, ${tries.filter((t) => !t).length} unanswered`,
      );
      const then: string[] = [];
      for (let i = 0; i < 6; i++) then.push(await get(cli!.metadata!.name!, ip, 80).catch(() => ""));
      expect(
        then.filter((t) => !servers.includes(t)),
        `through ${ip}, after: ${then.join(", ")}`,
      ).toEqual([]);
    }
    expect(await k.warnings(CNI_ERRORS)).toEqual([]);
  }, 180_000);

  it("the pods deleted: no IP assigned in either daemon (API and metrics), no host veth, no pod namespace", async () => {
    /** What each node's daemon holds for pods: its API's allocations, its metric, the host veths. */
    const held = async (): Promise<
      Record<string, { allocations: number; assigned: number; veths: number }>
    > => {
      const out: Record<string, { allocations: number; assigned: number; veths: number }> = {};
      for (const n of sb.file.nodes) {
        const r = await socketRequest(n.socket, "GET", "/v1/allocations");
        expect(r.status, `${n.name}: GET /v1/allocations`).toBe(200);
        const allocations = r.body.allocations;
        if (!Array.isArray(allocations))
          throw new Error(`${n.name}: /v1/allocations: ${JSON.stringify(r.body)}`);
        const metrics = await fetch(`${n.http}/metrics`).then((res) => res.text());
        const assigned = samples(metrics, "eniway_pool_ips").filter((x) => x.labels.state === "assigned");
        if (assigned.length === 0)
          throw new Error(`${n.name}: no eniway_pool_ips{state="assigned"} in /metrics`);
        out[n.name] = {
          allocations: allocations.length,
          assigned: assigned.reduce((a, x) => a + x.value, 0),
          veths: nodeLinks(n.netns).filter((l) => HOST_VETH.test(l)).length,
        };
      }
      return out;
    };
    // Before: node A holds the client's addresses, node B the two servers', each pair with an IPv6.
    const [a, b] = [sb.file.nodes[0]!.name, sb.file.nodes[1]!.name];
    const now = await held();
    expect(now).toEqual({
      [a]: { allocations: 1, assigned: 1, veths: 1 },
      [b]: { allocations: 2, assigned: 2, veths: 2 },
    });
    const allocations = (
      await Promise.all(sb.file.nodes.map((n) => socketRequest(n.socket, "GET", "/v1/allocations")))
    ).flatMap((r) => r.body.allocations as { ip: string; ipv6?: string }[]);
    expect(allocations.map((x) => typeof x.ipv6 === "string" && inCidr(x.ipv6, VPC_V6))).toEqual([
      true,
      true,
      true,
    ]);
    const namespaces = (await Promise.all(sb.nodes.map(podNetns))).flat();
    expect(namespaces).toHaveLength(3);
    const t0 = Date.now();
    await k.kubectl(["delete", "service", "srv"]);
    await k.kubectl(["delete", "deployment", "srv", "cli"]);
    await k.waitGone("app=srv");
    await k.waitGone("app=cli");
    console.log(`figure: 3 dual-stack pods deleted → gone from the API: ${Date.now() - t0} ms`);
    const none = {
      [a]: { allocations: 0, assigned: 0, veths: 0 },
      [b]: { allocations: 0, assigned: 0, veths: 0 },
    };
    const deadline = Date.now() + 60_000;
    while (JSON.stringify(await held()) !== JSON.stringify(none) && Date.now() < deadline) await sleep(500);
    expect(await held()).toEqual(none);
    console.log(`figure: 3 dual-stack pods deleted → nothing held on either node: ${Date.now() - t0} ms`);
    const mounted = (await Promise.all(sb.nodes.map(podNetns))).flat();
    expect(namespaces.filter((ns) => mounted.includes(ns) || existsSync(join("/run/netns", ns)))).toEqual([]);
    expect(await k.warnings(CNI_ERRORS)).toEqual([]);
  }, 180_000);
});
