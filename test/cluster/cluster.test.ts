// eniway on a real Kubernetes 1.20 cluster: kube-apiserver, controller-
// manager, scheduler, and per sandbox node a kubelet, containerd and
// kube-proxy whose network is that node's namespace of the simulated VPC.
// eniway is installed with `helm install` of charts/eniway, from the image
// `eniway image build` makes, as a user would install it.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.js";
import { KUBELET_SYSCTLS, NODE_PATHS, podNetns } from "../../src/sandbox/cluster.js";
import {
  type ClusterSandbox,
  RELEASE,
  RELEASE_NAMESPACE,
  sandboxClusterUp,
} from "../../src/sandbox/clusterup.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { httpFromNetns, type Kube, kube, requireClusterTestTools, sleep, webDeployment } from "./helpers.js";

const PREFIX = `ewct${process.pid % 1000}`;
const CNI_ERRORS = ["FailedCreatePodSandBox", "FailedKillPod", "FailedSync", "NetworkNotReady"];
const sysctl = (k: string): string => readFileSync(`/proc/sys/${k.replaceAll(".", "/")}`, "utf8").trim();
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

describe("eniway installed with helm on kubelet + containerd nodes of the simulated VPC", () => {
  let dir: string;
  let sb: ClusterSandbox;
  let k: Kube;
  const before = { sysctls: {} as Record<string, string>, paths: [] as string[], links: [] as string[] };
  const nodeName = (i: number): string => sb.file.nodes[i]!.nodeName!;
  /** Secondary IPs the cloud has on the instance's non-primary ENIs. */
  const cloudIps = (instanceId: string): string[] => {
    const inst = sb.sim.state.instances.get(instanceId)!;
    return [...sb.sim.state.enis.values()]
      .filter((e) => e.instanceId === instanceId && e.id !== inst.primaryEniId)
      .flatMap((e) => e.ips);
  };
  /** `eniway mapping` in the node's eniway pod: kubectl exec rejects when it exits 1 (a mismatch). */
  const mapping = async (i: number): Promise<string> => {
    const pods = await k.core.listNamespacedPod({
      namespace: RELEASE_NAMESPACE,
      fieldSelector: `spec.nodeName=${nodeName(i)}`,
    });
    const pod = pods.items[0]!.metadata!.name!;
    const cli = [
      "node",
      "/opt/eniway/dist/src/cli/main.js",
      "mapping",
      "--socket",
      "/run/eniway/eniway.sock",
    ];
    return k.kubectl(["-n", RELEASE_NAMESPACE, "exec", pod, "--", ...cli]);
  };

  beforeAll(async () => {
    requireClusterTestTools();
    for (const s of KUBELET_SYSCTLS) before.sysctls[s] = sysctl(s);
    before.paths = Object.keys(NODE_PATHS).filter((p) => existsSync(p));
    before.links = rootLinks();
    dir = await mkdtemp(join(tmpdir(), "eniway-cluster-"));
    sb = await sandboxClusterUp({
      dir: join(dir, "sandbox"),
      nodes: 2,
      world: sandboxWorld(2, PREFIX, { hosts: 1 }),
      sets: [
        "pool.minIdle=2",
        "pool.maxIdle=4",
        "pool.cooldownSeconds=1",
        "pool.idleReclaimSeconds=5",
        "kubernetes.releaseGraceSeconds=5",
      ],
      install: false,
      log: createLogger({ level: "warn", base: { component: "cluster-test" } }),
    });
    k = kube(sb, dir);
  }, 600_000);

  afterAll(async () => {
    // The stop ends within 10 s whatever still runs, and takes the pods' namespaces with it.
    const podNamespaces = sb ? (await Promise.all(sb.nodes.map(podNetns))).flat() : [];
    const t0 = Date.now();
    await sb?.stop();
    const stopMs = Date.now() - t0;
    console.log(`figure: sandbox stop with ${podNamespaces.length} pod namespaces: ${stopMs} ms`);
    expect(stopMs).toBeLessThan(10_000);
    expect(podNamespaces.filter((ns) => existsSync(join("/run/netns", ns)))).toEqual([]);
    await rm(dir, { recursive: true, force: true });
    // Nothing of the cluster is left on the host: namespaces, links, processes, mounts, sysctls, paths.
    // (Pod namespaces are checked where the pods go: other test files make cni-* ones meanwhile.)
    expect(netnsList().filter((n) => n.startsWith(PREFIX))).toEqual([]);
    expect(rootLinks().filter((l) => !before.links.includes(l))).toEqual([]);
    const ours = execFileSync("ps", ["-eo", "args"])
      .toString()
      .split("\n")
      .filter((l) => l.includes(dir));
    expect(ours).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8").includes(dir)).toBe(false);
    for (const [s, v] of Object.entries(before.sysctls)) expect(`${s}=${sysctl(s)}`).toBe(`${s}=${v}`);
    expect(Object.keys(NODE_PATHS).filter((p) => existsSync(p))).toEqual(before.paths);
  }, 300_000);

  it("helm install: every DaemonSet pod Ready, the conflist only after readiness, node annotation and condition", async () => {
    // Before: no CNI config, so the kubelets report the network not ready.
    for (const n of sb.file.nodes) expect(existsSync(n.cniConfFile)).toBe(false);
    const nodesBefore = (await k.core.listNode()).items;
    expect(nodesBefore.map((n) => n.status?.conditions?.find((c) => c.type === "Ready")?.status)).toEqual([
      "False",
      "False",
    ]);
    const t0 = Date.now();
    await sb.release("install");
    console.log(`figure: helm install → DaemonSet Ready on 2 nodes and nodes Ready: ${Date.now() - t0} ms`);
    for (const n of sb.file.nodes) {
      const conf = JSON.parse(readFileSync(n.cniConfFile, "utf8")) as { plugins: { type: string }[] };
      expect(conf.plugins.map((p) => p.type)).toEqual(["eniway", "portmap", "bandwidth"]);
      expect(existsSync(join(n.cniBinDir, "eniway"))).toBe(true);
    }
    // The daemon writes the conflist only once its node is ready (and /readyz says so).
    const pods = (
      await k.core.listNamespacedPod({
        namespace: RELEASE_NAMESPACE,
        labelSelector: "app.kubernetes.io/name=eniway",
      })
    ).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      const log = await k.kubectl(["-n", RELEASE_NAMESPACE, "logs", p.metadata!.name!]);
      const lines = log
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string });
      const written = lines.findIndex((l) => l.msg === "CNI config written");
      expect(written).toBeGreaterThan(-1);
      expect(lines.slice(0, written).some((l) => l.msg === "node ready")).toBe(true);
    }
    for (const n of (await k.core.listNode()).items) {
      expect(n.metadata?.annotations?.["eniway.io/max-pods"]).toBe("12");
      const c = n.status?.conditions?.find((x) => x.type === "ENIPoolReady");
      expect(`${c?.status}/${c?.reason}`).toBe("True/PoolReady");
    }
  }, 300_000);

  it("a Deployment over both nodes: VPC IPs from each node's ENIs, pod↔pod through the VPC, a Service through kube-proxy, hostPort", async () => {
    const t0 = Date.now();
    await k.apply("web", webDeployment({ name: "web", replicas: 4, image: sb.file.image! }));
    const pods = await k.waitRunning("app=web", 4);
    console.log(`figure: Deployment of 4 → all Running: ${Date.now() - t0} ms`);
    const byNode = new Map<string, string[]>();
    for (const p of pods)
      byNode.set(p.spec!.nodeName!, [...(byNode.get(p.spec!.nodeName!) ?? []), p.status!.podIP!]);
    expect([...byNode.keys()].sort()).toEqual([nodeName(0), nodeName(1)]);
    // Each pod's IP is a secondary IP of one of its own node's secondary ENIs, in the cloud.
    for (const n of sb.file.nodes)
      for (const ip of byNode.get(n.nodeName!)!) expect(cloudIps(n.instanceId)).toContain(ip);
    const onA = pods.find((p) => p.spec!.nodeName === nodeName(0))!;
    const onB = pods.find((p) => p.spec!.nodeName === nodeName(1))!;
    // Pod to pod across nodes, through the VPC router (source-checked).
    expect(await k.httpFromPod(onA.metadata!.name!, onB.status!.podIP!, 8080)).toBe(onB.metadata!.name);
    expect(await k.httpFromPod(onB.metadata!.name!, onA.status!.podIP!, 8080)).toBe(onA.metadata!.name);
    // In the image too, pods' sides were wired by the netlink helper, not by the ip -batch fallback.
    for (const p of (
      await k.core.listNamespacedPod({
        namespace: RELEASE_NAMESPACE,
        labelSelector: "app.kubernetes.io/name=eniway",
      })
    ).items) {
      const msgs = (await k.kubectl(["-n", RELEASE_NAMESPACE, "logs", p.metadata!.name!]))
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(msgs, p.metadata!.name).toContain("netlink helper started");
      expect(msgs, p.metadata!.name).not.toContain(
        "netlink helper stopped; pods are wired with ip -batch meanwhile",
      );
    }
    // A ClusterIP Service: kube-proxy (iptables mode) in each node's namespace DNATs to pods on both nodes.
    await k.apply(
      "web-svc",
      JSON.stringify({
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: "default" },
        spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
      }),
    );
    const svc = await k.core.readNamespacedService({ name: "web", namespace: "default" });
    const clusterIp = svc.spec!.clusterIP!;
    const answered = new Set<string>();
    const deadline = Date.now() + 60_000;
    while (answered.size < 4 && Date.now() < deadline) {
      const who = await k.httpFromPod(onA.metadata!.name!, clusterIp, 80).catch(() => "");
      if (who) answered.add(who);
    }
    expect([...answered].sort()).toEqual(pods.map((p) => p.metadata!.name!).sort());
    // hostPort (portmap after eniway): node A reaches a pod on node B at B's primary IP.
    await k.apply(
      "hp",
      webDeployment({
        name: "hp",
        replicas: 1,
        image: sb.file.image!,
        nodeSelector: { "kubernetes.io/hostname": nodeName(1) },
        hostPort: 18080,
      }),
    );
    const [hp] = await k.waitRunning("app=hp", 1);
    expect(httpFromNetns(sb.nodes[0]!.netns, sb.nodes[1]!.primaryIp, 18080)).toBe(hp!.metadata!.name);
    await k.kubectl(["delete", "deployment", "hp", "--wait=false"]);
    await k.waitGone("app=hp");
  }, 300_000);

  it("NetworkPolicy across nodes: node B's pod admits only a pod of node A that the policy names, on its port; a label change is followed; node B still reaches its pod; the policy deleted restores the baseline", async () => {
    const pods = await k.pods("app=web");
    const a = pods.find((p) => p.spec!.nodeName === nodeName(0))!.metadata!.name!;
    const b = pods.find((p) => p.spec!.nodeName === nodeName(1))!;
    const bIp = b.status!.podIP!;
    const reaches = (port: number): Promise<boolean> =>
      k.httpFromPod(a, bIp, port).then(
        (who) => who === b.metadata!.name,
        () => false,
      );
    const eventually = async (what: string, holds: () => Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!(await holds())) if (Date.now() > deadline) throw new Error(`not within 20 s: ${what}`);
    };
    expect(await reaches(8080)).toBe(true);
    await k.apply(
      "np-web",
      JSON.stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "web-friends", namespace: "default" },
        spec: {
          podSelector: { matchLabels: { app: "web" } },
          ingress: [
            { from: [{ podSelector: { matchLabels: { role: "friend" } } }], ports: [{ port: 8080 }] },
          ],
        },
      }),
    );
    await eventually("the unlabelled pod of node A is denied", async () => !(await reaches(8080)));
    // The node's own traffic (kubelet probes) passes.
    expect(httpFromNetns(sb.nodes[1]!.netns, bIp, 8080)).toBe(b.metadata!.name);
    await k.kubectl(["label", "pod", a, "role=friend"]);
    await eventually("the labelled pod of node A is admitted", () => reaches(8080));
    await k.kubectl(["label", "pod", a, "role-"]);
    await eventually("the pod of node A is denied again", async () => !(await reaches(8080)));
    await k.kubectl(["delete", "networkpolicy", "web-friends"]);
    await eventually("the policy deleted: every pod reaches B's pod again", () => reaches(8080));
    expect(await k.warnings(["NetworkPolicyNotEnforced"])).toEqual([]);
  }, 180_000);

  it("scaled past the warm pool, pods wait for the refill instead of failing; scaled to zero, the cloud keeps at most maxIdle IPs per node", async () => {
    await k.kubectl(["scale", "deployment", "web", "--replicas=20"]);
    const pods = await k.waitRunning("app=web", 20, 180_000);
    expect(new Set(pods.map((p) => p.status!.podIP)).size).toBe(20);
    // The pods' namespaces, mounted in the nodes' mount namespaces (plain files in the root one).
    const podNamespaces = (await Promise.all(sb.nodes.map(podNetns))).flat();
    expect(podNamespaces.length).toBeGreaterThanOrEqual(20);
    expect(await k.warnings(CNI_ERRORS)).toEqual([]);
    await k.kubectl(["scale", "deployment", "web", "--replicas=0"]);
    await k.waitGone("app=web");
    // The pool gives back what is above maxIdle (after the cooldown); nothing stays allocated.
    const deadline = Date.now() + 90_000;
    const held = (): number[] => sb.file.nodes.map((n) => cloudIps(n.instanceId).length);
    while (held().some((h) => h > 4) && Date.now() < deadline) await sleep(500);
    expect(held().every((h) => h <= 4)).toBe(true);
    const mountedAfter = (await Promise.all(sb.nodes.map(podNetns))).flat();
    expect(
      podNamespaces.filter((ns) => mountedAfter.includes(ns) || existsSync(join("/run/netns", ns))),
    ).toEqual([]);
    for (const n of sb.file.nodes) {
      const links = nodeLinks(n.netns);
      expect(links.filter((l) => !/^(lo|eth\d+|ewk[0-9a-f]{4}n\d+)$/.test(l))).toEqual([]);
    }
    for (const i of [0, 1]) expect(await mapping(i)).toMatch(/^0 problem\(s\)$/m);
  }, 300_000);

  it("the kubelets saw no CNI error, and `eniway mapping` agrees with the API server", async () => {
    await k.kubectl(["scale", "deployment", "web", "--replicas=4"]);
    await k.waitRunning("app=web", 4);
    expect(await k.warnings(CNI_ERRORS)).toEqual([]);
    for (const i of [0, 1]) expect(await mapping(i)).toMatch(/^0 problem\(s\)$/m);
  }, 300_000);

  it("a VPC host outside the cluster and the pods reach each other by their own addresses, with no NAT on the way", async () => {
    const host = sb.file.hosts[0]!;
    const pods = await k.waitRunning("app=web", 4);
    // The host (no daemon, no kubelet: only its primary ENI) reaches every pod by its IP.
    for (const p of pods) expect(httpFromNetns(host.netns, p.status!.podIP!, 8080)).toBe(p.metadata!.name);
    // And every pod reaches the host, which sees the pod's own address (a CGI answers REMOTE_ADDR).
    const www = join(dir, "host-www");
    await mkdir(join(www, "cgi-bin"), { recursive: true });
    await writeFile(
      join(www, "cgi-bin", "ip"),
      "#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n",
      {
        mode: 0o755,
      },
    );
    const httpd = spawn(
      "nsenter",
      // On the host's IPv4 address: REMOTE_ADDR is then the peer's IPv4 address as it arrived.
      [`--net=/run/netns/${host.netns}`, "--", "busybox", "httpd", "-f", "-p", `${host.ip}:7777`, "-h", www],
      {
        stdio: "ignore",
      },
    );
    try {
      for (const p of pods) {
        let seen = "";
        for (let i = 0; i < 20 && !seen; i++) {
          seen = (
            await k
              .kubectl([
                "exec",
                p.metadata!.name!,
                "--",
                "sh",
                "-c",
                'printf "GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n" | nc -w 3 "$0" 7777',
                host.ip,
              ])
              .catch(() => "")
          )
            .trim()
            .split("\n")
            .pop()!;
          if (!seen) await sleep(250);
        }
        expect(seen, `${p.metadata!.name} → ${host.ip}`).toBe(p.status!.podIP);
      }
    } finally {
      httpd.kill("SIGKILL");
    }
  }, 300_000);

  it("helm upgrade with a changed pool setting rolls the DaemonSet; running pods keep their IPs and connectivity", async () => {
    const before = (await k.pods("app=web")).map((p) => `${p.metadata!.name} ${p.status!.podIP}`).sort();
    const dsBefore = (
      await k.core.listNamespacedPod({
        namespace: RELEASE_NAMESPACE,
        labelSelector: "app.kubernetes.io/name=eniway",
      })
    ).items.map((p) => p.metadata!.uid);
    await sb.release("upgrade", ["config.pool.maxIdle=6"]);
    const dsAfter = (
      await k.core.listNamespacedPod({
        namespace: RELEASE_NAMESPACE,
        labelSelector: "app.kubernetes.io/name=eniway",
      })
    ).items.map((p) => p.metadata!.uid);
    expect(dsAfter.filter((u) => dsBefore.includes(u))).toEqual([]);
    const after = await k.pods("app=web");
    expect(after.map((p) => `${p.metadata!.name} ${p.status!.podIP}`).sort()).toEqual(before);
    const a = after.find((p) => p.spec!.nodeName === nodeName(0))!;
    const b = after.find((p) => p.spec!.nodeName === nodeName(1))!;
    expect(await k.httpFromPod(a.metadata!.name!, b.status!.podIP!, 8080)).toBe(b.metadata!.name);
    const cm = await k.core.readNamespacedConfigMap({ name: "eniway-config", namespace: RELEASE_NAMESPACE });
    expect(JSON.stringify(cm.data)).toContain("maxIdle: 6");
    expect(await k.warnings(CNI_ERRORS)).toEqual([]);
  }, 300_000);

  it("helm uninstall removes every object of the release; the plugin and the conflist stay on the nodes", async () => {
    await k.kubectl(["delete", "deployment", "web"]);
    await k.waitGone("app=web");
    await sb.helm(["uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait"]);
    const deadline = Date.now() + 60_000;
    const left = async (): Promise<string> =>
      (
        await k.kubectl([
          "get",
          "all,configmap,secret,serviceaccount,clusterrole,clusterrolebinding",
          "-A",
          "-o",
          "name",
        ])
      )
        .split("\n")
        .filter((l) => l.includes("eniway"))
        .join(" ");
    while ((await left()) !== "" && Date.now() < deadline) await sleep(500);
    expect(await left()).toBe("");
    // Kept on purpose, as the AWS VPC CNI and Terway keep theirs: a daemon cannot tell an
    // uninstall from an upgrade, and removing the conflist would take the node NotReady.
    for (const n of sb.file.nodes) {
      expect(existsSync(n.cniConfFile)).toBe(true);
      expect(await readdir(n.cniBinDir)).toContain("eniway");
    }
  }, 300_000);
});
