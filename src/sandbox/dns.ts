// Cluster DNS for `sandbox up --cluster`: a `kube-dns` Service in kube-system
// (the address the kubelets give pods) whose endpoint is BIND's named,
// Debian's DNS server, running in the first node's network namespace on
// that node's address. CoreDNS is neither packaged nor downloadable here;
// named serves the zones dns-zone.ts renders from the API server's Services,
// Endpoints and Pods, kept current by watches and reloaded with SIGHUP
// (a reload keeps serving: no window without answers).

import type { ChildProcess } from "node:child_process";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  makeInformer,
  type V1Endpoints,
  type V1Pod,
  type V1Service,
} from "@kubernetes/client-node";
import type { Logger } from "../../lib/log.js";
import { isIpv4, NETNS_NAME } from "../../lib/net.js";
import { findTool, hasExited, logTail, spawnLogged, waitExit } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";
import { CLUSTER_DOMAIN, type DnsEndpoints, type DnsPod, type DnsService, renderZones } from "./dns-zone.js";
import { StartFailed } from "./failure.js";

/** The kubelets' clusterDNS: the kube-dns Service's ClusterIP. */
export const CLUSTER_DNS_IP = "10.96.0.10";

export interface ClusterDns {
  /** Renders and reloads now; resolves once named has been told. */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

const namedConf = (dir: string, ip: string): string => `options {
  directory "${dir}";
  pid-file none;
  session-keyfile "${dir}/session.key";
  managed-keys-directory "${dir}";
  listen-on port 53 { ${ip}; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  allow-transfer { none; };
  dnssec-validation no;
};
controls { };
logging {
  channel to_stderr { stderr; severity info; print-time yes; };
  category default { to_stderr; };
  category lame-servers { null; };
};
zone "${CLUSTER_DOMAIN}" { type primary; file "${dir}/forward.zone"; };
zone "in-addr.arpa" { type primary; file "${dir}/reverse.zone"; };
`;

const toService = (s: V1Service): DnsService => ({
  namespace: s.metadata?.namespace ?? "",
  name: s.metadata?.name ?? "",
  clusterIP: s.spec?.type === "ExternalName" ? "" : (s.spec?.clusterIP ?? ""),
  ...(s.spec?.type === "ExternalName" ? { externalName: s.spec.externalName ?? "" } : {}),
  ports: (s.spec?.ports ?? []).map((p) => ({
    ...(p.name ? { name: p.name } : {}),
    protocol: p.protocol ?? "TCP",
    port: p.port,
  })),
});

const toEndpoints = (e: V1Endpoints): DnsEndpoints => ({
  namespace: e.metadata?.namespace ?? "",
  name: e.metadata?.name ?? "",
  subsets: (e.subsets ?? []).map((s) => ({
    addresses: (s.addresses ?? []).map((a) => ({
      ip: a.ip,
      ...(a.hostname ? { hostname: a.hostname } : {}),
    })),
    ports: (s.ports ?? []).map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      protocol: p.protocol ?? "TCP",
      port: p.port,
    })),
  })),
});

const toPod = (p: V1Pod): DnsPod | null =>
  p.status?.podIP && isIpv4(p.status.podIP) && !p.spec?.hostNetwork
    ? { namespace: p.metadata?.namespace ?? "", ip: p.status.podIP }
    : null;

/** The kube-dns Service and its Endpoints (named's address), in kube-system. */
async function kubeDnsService(core: CoreV1Api, ip: string): Promise<void> {
  const ports = [
    { name: "dns", port: 53, protocol: "UDP" },
    { name: "dns-tcp", port: 53, protocol: "TCP" },
  ];
  await core.createNamespacedService({
    namespace: "kube-system",
    body: {
      metadata: { name: "kube-dns", labels: { "k8s-app": "kube-dns", "kubernetes.io/name": "named" } },
      spec: { clusterIP: CLUSTER_DNS_IP, ports: ports.map((p) => ({ ...p, targetPort: 53 })) },
    },
  });
  await core.createNamespacedEndpoints({
    namespace: "kube-system",
    body: { metadata: { name: "kube-dns" }, subsets: [{ addresses: [{ ip }], ports }] },
  });
}

export interface Named {
  /** Replaces both zones and has named reload them (it keeps answering meanwhile). */
  load(zones: { forward: string; reverse: string }): Promise<void>;
  stop(): Promise<void>;
}

/** named in the network namespace `netns`, answering on `ip`:53 from its folder `dir`, with these first zones. */
export async function startNamed(o: {
  netns: string;
  ip: string;
  dir: string;
  zones: { forward: string; reverse: string };
}): Promise<Named> {
  const named = findTool("named");
  if (!named) throw new Error("sandbox --cluster: named is missing: apt-get install -y bind9");
  if (!NETNS_NAME.test(o.netns) || !isIpv4(o.ip)) throw new Error(`cluster DNS: invalid ${o.netns} ${o.ip}`);
  const write = async (name: string, text: string): Promise<void> => {
    const tmp = join(o.dir, `.${name}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, join(o.dir, name));
  };
  const writeZones = async (z: { forward: string; reverse: string }): Promise<void> => {
    await write("forward.zone", z.forward);
    await write("reverse.zone", z.reverse);
  };
  await writeZones(o.zones);
  const conf = join(o.dir, "named.conf");
  await writeFile(conf, namedConf(o.dir, o.ip));
  const log = join(o.dir, "named.log");
  // nsenter enters the namespace and execs named: a signal to the child reaches named itself.
  const child = await spawnLogged(
    ["nsenter", `--net=/var/run/netns/${o.netns}`, "--", named, "-g", "-4", "-c", conf],
    log,
  );
  const stop = async (): Promise<void> => {
    if (hasExited(child)) return;
    child.kill("SIGTERM");
    if (!(await waitExit(child, 2000))) child.kill("SIGKILL");
    await waitExit(child);
  };
  try {
    await waitServing(child, log);
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    async load(z) {
      await writeZones(z);
      if (!hasExited(child)) child.kill("SIGHUP");
    },
    stop,
  };
}

/**
 * Starts named in the network namespace `netns` on `ip`, the kube-dns
 * Service pointing at it, and the watches that keep its zones current.
 */
export async function startClusterDns(o: {
  admin: KubeConfig;
  netns: string;
  ip: string;
  dir: string;
  log: Logger;
}): Promise<ClusterDns> {
  const core = o.admin.makeApiClient(CoreV1Api);
  const caches = {
    services: makeInformer<V1Service>(o.admin, "/api/v1/services", () => core.listServiceForAllNamespaces()),
    endpoints: makeInformer<V1Endpoints>(o.admin, "/api/v1/endpoints", () =>
      core.listEndpointsForAllNamespaces(),
    ),
    pods: makeInformer<V1Pod>(o.admin, "/api/v1/pods", () => core.listPodForAllNamespaces()),
  };
  let serial = Math.floor(Date.now() / 1000);
  let named: Named | null = null;
  let stopped = false;

  const zones = () =>
    renderZones({
      services: caches.services.list().map(toService),
      endpoints: caches.endpoints.list().map(toEndpoints),
      pods: caches.pods
        .list()
        .map(toPod)
        .filter((p): p is DnsPod => p !== null),
      serverIp: o.ip,
      serial: ++serial,
    });

  // One load at a time; changes meanwhile make one more right after.
  let running: Promise<void> | null = null;
  let again = false;
  const sync = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await named?.load(zones());
      } while (again && !stopped);
    })().finally(() => {
      running = null;
    });
    return running;
  };
  let pending: NodeJS.Timeout | null = null;
  const soon = (): void => {
    if (pending || stopped) return;
    pending = setTimeout(() => {
      pending = null;
      sync().catch((e: unknown) => o.log.warn("cluster DNS: zones not updated", { error: String(e) }));
    }, 100);
  };

  const watch = <T extends KubernetesObject>(name: string, inf: ReturnType<typeof makeInformer<T>>): void => {
    for (const verb of ["add", "update", "delete"] as const) inf.on(verb, soon);
    // The informer stops on an error: start it again, as kube-dns would reconnect.
    inf.on("error", (e: unknown) => {
      if (stopped) return;
      o.log.debug("cluster DNS: watch restarts", { watch: name, error: String(e) });
      setTimeout(() => {
        if (!stopped) inf.start().catch(() => {});
      }, 1000);
    });
  };
  watch("services", caches.services);
  watch("endpoints", caches.endpoints);
  watch("pods", caches.pods);

  const stop = async (): Promise<void> => {
    stopped = true;
    if (pending) clearTimeout(pending);
    await Promise.all(Object.values(caches).map((c) => c.stop().catch(() => {})));
    await named?.stop();
  };
  try {
    await Promise.all(Object.values(caches).map((c) => c.start()));
    named = await startNamed({ netns: o.netns, ip: o.ip, dir: o.dir, zones: zones() });
    await kubeDnsService(core, o.ip);
    return { sync, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Until named says it is running (it logs "running" once its zones are loaded). */
async function waitServing(child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = await logTail(log, 200);
    // Its last start-up line is a bare "running" (after "all zones loaded");
    // the banner's "running on Linux …" and "running as: …" come first.
    if (/ running$/m.test(text)) return;
    if (hasExited(child) || Date.now() > deadline)
      throw new StartFailed(
        `named ${hasExited(child) ? "ended" : "not running after 20 s"}: ${await logTail(log, 8)}\n(its log is kept at ${log})`,
        [log],
      );
    await sleep(100);
  }
}
