// A sandbox with a real control plane beside it (`sandbox up --kubernetes`),
// and what the Kubernetes tests do with it: pods in the API server, CNI
// calls through the built plugin with the CNI_ARGS containerd sends, and the
// daemon's view over its socket.

import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, KubeConfig, type V1ContainerPort, type V1OwnerReference } from "@kubernetes/client-node";
import type { World } from "../../cloud/simulator/world.js";
import { silentLogger } from "../../lib/log.js";
import { runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp } from "../../src/sandbox/sandbox.js";
import { call } from "../daemon-harness.js";

export interface KubeSandbox {
  sb: Sandbox;
  node: SandboxNode;
  core: CoreV1Api;
  admin: KubeConfig;
  /** A pod object bound to the node (no kubelet runs it); returns its UID. */
  createPod(name: string, owner?: "StatefulSet" | "ReplicaSet" | null, extra?: PodExtra): Promise<string>;
  /** Deleted at once (grace 0), as the kubelet's final delete does. */
  deletePod(name: string): Promise<void>;
  /** CNI ADD through the plugin; the pod's namespace is made for it. */
  add(pod: {
    name: string;
    uid: string;
    containerId?: string;
    namespace?: string;
  }): Promise<{ code: number | null; ip: string; out: string; netns: string }>;
  del(containerId: string): Promise<{ code: number | null; out: string }>;
  allocations(): Promise<{ containerId: string; ip: string; pod: { name: string; uid: string } }[]>;
  ipPhase(ip: string): Promise<string | undefined>;
  stats(): Promise<KubeStats>;
  /** Events about an object, by reason → summed count. */
  events(
    kind: "Pod" | "Node" | "NetworkPolicy",
    name: string,
  ): Promise<Map<string, { count: number; objects: number; message: string }>>;
  close(): Promise<void>;
}

/** A pod's namespace (default "default"), labels and container ports. */
export interface PodExtra {
  namespace?: string;
  labels?: Record<string, string>;
  ports?: V1ContainerPort[];
}

export interface KubeStats {
  releasedPodGone: number;
  events: { created: number; updated: number; suppressed: number; failed: number };
  informer: {
    lists: number;
    watches: number;
    relists: number;
    failures: number;
    events: number;
    watching: boolean;
    synced: boolean;
    pods: number;
  };
  requests: Record<string, number>;
  condition: { status: string; reason: string } | null;
}

export async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();

export async function kubeSandbox(opts: {
  prefix: string;
  world: World;
  sets: string[];
}): Promise<KubeSandbox> {
  const dir = await mkdtemp(join(tmpdir(), "eniway-k8s-"));
  const sb = await sandboxUp({
    dir,
    nodes: 1,
    world: opts.world,
    sets: opts.sets,
    kubernetes: true,
    log: silentLogger,
  });
  const node = sb.file.nodes[0]!;
  const admin = new KubeConfig();
  admin.loadFromFile(sb.file.kubernetes!.kubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  const netnses = new Set<string>();
  const containers = new Map<string, string>(); // containerId → netns name
  let seq = 0;

  const cniArgs = (namespace: string, name: string, uid: string): string =>
    `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=${uid}`;

  return {
    sb,
    node,
    core,
    admin,
    async createPod(name, owner, extra = {}) {
      const ownerReferences: V1OwnerReference[] | undefined = owner
        ? [
            {
              apiVersion: "apps/v1",
              kind: owner,
              name: name.replace(/-[^-]+$/, ""),
              uid: randomUUID(),
              controller: true,
            },
          ]
        : undefined;
      const pod = await core.createNamespacedPod({
        namespace: extra.namespace ?? "default",
        body: {
          metadata: { name, labels: extra.labels ?? {}, ...(ownerReferences ? { ownerReferences } : {}) },
          spec: {
            nodeName: node.nodeName!,
            // No controller-manager mints the legacy token Secret this would need.
            automountServiceAccountToken: false,
            containers: [{ name: "c", image: "localhost/busybox:local", ports: extra.ports ?? [] }],
          },
        },
      });
      return pod.metadata!.uid!;
    },
    async deletePod(name) {
      await core.deleteNamespacedPod({ namespace: "default", name, gracePeriodSeconds: 0 });
    },
    async add(pod) {
      const n = ++seq;
      const containerId = pod.containerId ?? `ctr-${pod.name}-${n}`;
      const ns = `${opts.prefix}-p${n}`;
      sh("ip", "netns", "add", ns);
      netnses.add(ns);
      containers.set(containerId, ns);
      const r = await runPlugin(node, {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: containerId,
        CNI_NETNS: `/var/run/netns/${ns}`,
        CNI_IFNAME: "eth0",
        CNI_ARGS: cniArgs(pod.namespace ?? "default", pod.name, pod.uid),
      });
      let ip = "";
      if (r.code === 0) {
        const res = JSON.parse(r.out) as { ips: { address: string }[] };
        ip = res.ips[0]!.address.split("/")[0]!;
      }
      return { code: r.code, ip, out: r.out, netns: ns };
    },
    async del(containerId) {
      const ns = containers.get(containerId);
      const r = await runPlugin(node, {
        CNI_COMMAND: "DEL",
        CNI_CONTAINERID: containerId,
        CNI_NETNS: ns ? `/var/run/netns/${ns}` : "",
        CNI_IFNAME: "eth0",
      });
      return { code: r.code, out: r.out };
    },
    async allocations() {
      const r = await call(node.socket, "GET", "/v1/allocations");
      return (r.body as { allocations: Awaited<ReturnType<KubeSandbox["allocations"]>> }).allocations;
    },
    async ipPhase(ip) {
      const r = await call(node.socket, "GET", "/v1/ips");
      return (r.body as { ips: { ip: string; phase: string }[] }).ips.find((x) => x.ip === ip)?.phase;
    },
    async stats() {
      const r = await call(node.socket, "GET", "/v1/kubernetes");
      return (r.body as { kubernetes: KubeStats }).kubernetes;
    },
    async events(kind, name) {
      // The test pods live in "default", and Events of cluster-scoped objects (the Node) go there too.
      const list = await core.listNamespacedEvent({
        namespace: "default",
        fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
      });
      const out = new Map<string, { count: number; objects: number; message: string }>();
      for (const e of list.items) {
        if (e.source?.component !== "eniway") continue;
        const r = out.get(e.reason ?? "") ?? { count: 0, objects: 0, message: "" };
        r.count += e.count ?? 1;
        r.objects++;
        r.message = e.message ?? "";
        out.set(e.reason ?? "", r);
      }
      return out;
    },
    async close() {
      await sb.stop();
      for (const ns of netnses) {
        try {
          sh("ip", "netns", "del", ns);
        } catch {}
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
