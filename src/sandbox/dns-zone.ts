// The sandbox cluster's DNS records, as a pure function of the API server's
// Services, Endpoints and Pods: the zone files a real DNS server (BIND, in
// dns.ts) serves for `cluster.local` and its reverse, after Kubernetes' DNS
// specification (kubernetes/dns, docs/specification.md), as kube-dns and
// CoreDNS answer it.

import { isIpv4 } from "../../lib/net.js";

export const CLUSTER_DOMAIN = "cluster.local";
/** Seconds: answers and their absence are cached this long (CoreDNS's default too). */
const TTL = 5;

export interface DnsService {
  namespace: string;
  name: string;
  /** "None" for a headless service; "" for ExternalName. */
  clusterIP: string;
  externalName?: string;
  ports: { name?: string; protocol: string; port: number }[];
}

export interface DnsEndpoints {
  namespace: string;
  name: string;
  subsets: {
    addresses: { ip: string; hostname?: string }[];
    ports: { name?: string; protocol: string; port: number }[];
  }[];
}

export interface DnsPod {
  namespace: string;
  ip: string;
}

export interface ZoneInput {
  services: DnsService[];
  endpoints: DnsEndpoints[];
  pods: DnsPod[];
  /** The DNS server's own address (its NS record). */
  serverIp: string;
  serial: number;
}

/** A DNS label as Kubernetes names are (RFC 1123); anything else never reaches a zone file. */
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A host name for a CNAME: labels of letters, digits and '-', with an optional final dot. */
const HOSTNAME =
  /^([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.?$/;

const dashed = (ip: string): string => ip.replaceAll(".", "-");
const fqdn = (...labels: string[]): string => `${[...labels, CLUSTER_DOMAIN].join(".")}.`;
const reverse = (ip: string): string => `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;

type Rr = [name: string, type: "A" | "CNAME" | "SRV" | "PTR" | "TXT", data: string];

/** The records of one Service (with its Endpoints when headless), per the specification's sections 2.3 and 2.4. */
function serviceRecords(s: DnsService, ep: DnsEndpoints | undefined): Rr[] {
  if (!LABEL.test(s.name) || !LABEL.test(s.namespace)) return [];
  const name = fqdn(s.name, s.namespace, "svc");
  if (s.externalName !== undefined)
    return HOSTNAME.test(s.externalName) ? [[name, "CNAME", `${s.externalName.replace(/\.?$/, ".")}`]] : [];
  const out: Rr[] = [];
  const srv = (portName: string | undefined, protocol: string, port: number, target: string): void => {
    if (!portName || !LABEL.test(portName)) return;
    out.push([`_${portName}._${protocol.toLowerCase()}.${name}`, "SRV", `0 100 ${port} ${target}`]);
  };
  if (isIpv4(s.clusterIP)) {
    out.push([name, "A", s.clusterIP], [reverse(s.clusterIP), "PTR", name]);
    for (const p of s.ports) srv(p.name, p.protocol, p.port, name);
    return out;
  }
  if (s.clusterIP !== "None") return out;
  for (const subset of ep?.subsets ?? [])
    for (const a of subset.addresses) {
      if (!isIpv4(a.ip)) continue;
      const host = a.hostname && LABEL.test(a.hostname) ? a.hostname : dashed(a.ip);
      const target = fqdn(host, s.name, s.namespace, "svc");
      out.push([name, "A", a.ip], [target, "A", a.ip]);
      if (a.hostname && LABEL.test(a.hostname)) out.push([reverse(a.ip), "PTR", target]);
      for (const p of subset.ports) srv(p.name, p.protocol, p.port, target);
    }
  return out;
}

const line = ([name, type, data]: Rr): string => `${name} ${TTL} IN ${type} ${data}`;

/** The two zone files: `cluster.local` and `in-addr.arpa`, each with its SOA and NS. */
export function renderZones(input: ZoneInput): { forward: string; reverse: string } {
  const endpoints = new Map(input.endpoints.map((e) => [`${e.namespace}/${e.name}`, e]));
  const rrs: Rr[] = [[fqdn("dns-version"), "TXT", '"1.1.0"']];
  for (const s of input.services) rrs.push(...serviceRecords(s, endpoints.get(`${s.namespace}/${s.name}`)));
  for (const p of input.pods)
    if (isIpv4(p.ip) && LABEL.test(p.namespace))
      rrs.push([fqdn(dashed(p.ip), p.namespace, "pod"), "A", p.ip]);
  const ns = fqdn("ns", "dns");
  const head = (origin: string): string[] => [
    `$ORIGIN ${origin}`,
    `@ ${TTL} IN SOA ${ns} hostmaster.${CLUSTER_DOMAIN}. ${input.serial} ${TTL} ${TTL} 3600 ${TTL}`,
    `@ ${TTL} IN NS ${ns}`,
  ];
  const unique = (list: Rr[]): string[] => [...new Set(list.map(line))];
  const forward = [
    ...head(`${CLUSTER_DOMAIN}.`),
    line([ns, "A", input.serverIp]),
    ...unique(rrs.filter((r) => r[1] !== "PTR")),
  ];
  const reverseZone = [...head("in-addr.arpa."), ...unique(rrs.filter((r) => r[1] === "PTR"))];
  return { forward: `${forward.join("\n")}\n`, reverse: `${reverseZone.join("\n")}\n` };
}
