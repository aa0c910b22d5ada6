// `eniway mapping`: pods in the API server, allocations in the pool and IPs
// in the cloud, side by side, with every disagreement named (as terway-cli's
// mapping does). The comparison is a pure function of the three views.

import type { CloudApi } from "../../cloud/api.js";
import { ipToInt, ipv4PrefixAddresses } from "../../lib/net.js";
import type { Allocation, Pool } from "../../pool/pool.js";
import type { KubeApi, PodInfo } from "../kubernetes/api.js";

export interface MappingRow {
  ip: string;
  eniId: string;
  /** The pool's phase of the IP, or "" when the pool does not track it. */
  state: string;
  /** The pod the pool gave the IP to ("namespace/name"), or "". */
  allocatedTo: string;
  /** The pod the API server says has this IP, "" for none, "?" when it was not asked. */
  apiPod: string;
  inCloud: boolean;
  problem: string;
}

export interface Mapping {
  kubernetes: boolean;
  rows: MappingRow[];
  problems: number;
}

const nameOf = (p: { namespace: string; name: string }): string => `${p.namespace}/${p.name}`;

export function crossCheck(input: {
  poolIps: { ip: string; eniId: string; phase: string }[];
  allocations: Allocation[];
  /** null: Kubernetes is not enabled or could not be listed. */
  pods: PodInfo[] | null;
  /** Every private IP on this node's pool ENIs, as the cloud lists them. */
  cloudIps: { ip: string; eniId: string }[];
}): Mapping {
  const byIp = new Map(input.allocations.map((a) => [a.ip, a]));
  const cloud = new Map(input.cloudIps.map((c) => [c.ip, c.eniId]));
  const podsWithIp = (input.pods ?? []).filter((p) => !p.hostNetwork && p.podIp);
  const podByIp = new Map(podsWithIp.map((p) => [p.podIp, p]));
  const podByName = new Map((input.pods ?? []).map((p) => [nameOf(p), p]));
  const rows: MappingRow[] = [];
  const seen = new Set<string>();
  for (const i of input.poolIps) {
    seen.add(i.ip);
    const a = byIp.get(i.ip);
    const apiPod = podByIp.get(i.ip);
    const problems: string[] = [];
    if (!cloud.has(i.ip)) problems.push("the cloud does not list this IP on the ENI");
    else if (cloud.get(i.ip) !== i.eniId) problems.push(`the cloud lists it on ${cloud.get(i.ip)}`);
    if (input.pods && a?.pod.name) {
      const p = podByName.get(nameOf(a.pod));
      if (!p || (a.pod.uid && p.uid !== a.pod.uid)) problems.push("its pod is not in the API server");
      else if (p.podIp && p.podIp !== i.ip) problems.push(`the API server says its pod has ${p.podIp}`);
    }
    if (apiPod && (!a || nameOf(a.pod) !== nameOf(apiPod)))
      problems.push(`the API server gives it to ${nameOf(apiPod)}, the pool does not`);
    rows.push({
      ip: i.ip,
      eniId: i.eniId,
      state: i.phase,
      allocatedTo: a?.pod.name ? nameOf(a.pod) : a ? a.containerId : "",
      apiPod: input.pods ? (apiPod ? nameOf(apiPod) : "") : "?",
      inCloud: cloud.has(i.ip),
      problem: problems.join("; "),
    });
  }
  for (const c of input.cloudIps) {
    if (seen.has(c.ip)) continue;
    seen.add(c.ip);
    const apiPod = podByIp.get(c.ip);
    rows.push({
      ip: c.ip,
      eniId: c.eniId,
      state: "",
      allocatedTo: "",
      apiPod: input.pods ? (apiPod ? nameOf(apiPod) : "") : "?",
      inCloud: true,
      problem: "on our ENI in the cloud but unknown to the pool",
    });
  }
  for (const p of podsWithIp) {
    if (seen.has(p.podIp)) continue;
    rows.push({
      ip: p.podIp,
      eniId: "",
      state: "",
      allocatedTo: "",
      apiPod: nameOf(p),
      inCloud: false,
      problem: "the API server gives this pod an IP the pool does not know",
    });
  }
  rows.sort((x, y) => ipToInt(x.ip) - ipToInt(y.ip));
  return { kubernetes: input.pods !== null, rows, problems: rows.filter((r) => r.problem).length };
}

/** Gather the three views now: a live list of pods (not the cache) and the cloud's ENIs. */
export async function gatherMapping(deps: {
  pool: Pool;
  cloud: CloudApi;
  kube: { api: KubeApi; nodeName: string } | null;
}): Promise<Mapping> {
  const enis = deps.pool.summary().enis.map((e) => e.eniId);
  const [pods, cloudEnis] = await Promise.all([
    deps.kube
      ? deps.kube.api
          .pods(deps.kube.nodeName)
          .list()
          .then((l) => l.items)
      : Promise.resolve(null),
    enis.length ? deps.cloud.describeNetworkInterfaces({ eniIds: enis }) : Promise.resolve([]),
  ]);
  return crossCheck({
    poolIps: deps.pool.ips(),
    allocations: deps.pool.allocations(),
    pods,
    // A prefix's addresses are the ENI's as much as its single IPs.
    cloudIps: cloudEnis.flatMap((e) =>
      [...e.privateIps, ...e.ipv4Prefixes.flatMap(ipv4PrefixAddresses)].map((ip) => ({ ip, eniId: e.eniId })),
    ),
  });
}
