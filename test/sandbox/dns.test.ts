// The sandbox cluster's DNS: the zones rendered from Services, Endpoints and
// Pods (src/sandbox/dns-zone.ts), served by a real named in a real network
// namespace and asked with dig, as the upstream DNS tests ask: A and SRV
// records of ClusterIP and headless services, hostnames of endpoints, pod
// records, ExternalName CNAMEs, PTRs; and a reload that changes them.

import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Named, startNamed } from "../../src/sandbox/dns.js";
import { renderZones, type ZoneInput } from "../../src/sandbox/dns-zone.js";
import { sh } from "../helpers/netns.js";

const NS = `ewdns${process.pid % 100000}`;
const IP = "10.77.0.53";

const input = (over: Partial<ZoneInput> = {}): ZoneInput => ({
  services: [
    {
      namespace: "default",
      name: "kubernetes",
      clusterIP: "10.96.0.1",
      ports: [{ name: "https", protocol: "TCP", port: 443 }],
    },
    {
      namespace: "web",
      name: "api",
      clusterIP: "10.96.4.7",
      ports: [
        { name: "http", protocol: "TCP", port: 80 },
        { protocol: "UDP", port: 53 },
      ],
    },
    { namespace: "web", name: "db", clusterIP: "None", ports: [{ name: "pg", protocol: "TCP", port: 5432 }] },
    { namespace: "web", name: "out", clusterIP: "", externalName: "foo.example.com", ports: [] },
    // Never in a zone file: names that are not DNS labels.
    { namespace: "web", name: "Bad_Name", clusterIP: "10.96.9.9", ports: [] },
    { namespace: "web", name: "evil", clusterIP: "", externalName: "x.com.\n@ IN NS attacker.", ports: [] },
  ],
  endpoints: [
    {
      namespace: "web",
      name: "db",
      subsets: [
        {
          addresses: [{ ip: "10.0.1.21", hostname: "db-0" }, { ip: "10.0.1.22" }],
          ports: [{ name: "pg", protocol: "TCP", port: 5432 }],
        },
      ],
    },
  ],
  pods: [
    { namespace: "web", ip: "10.0.1.21" },
    { namespace: "web", ip: "not-an-ip" },
  ],
  serverIp: IP,
  serial: 7,
  ...over,
});

describe("the cluster DNS zones", () => {
  it("render the records of the DNS specification, and nothing that is not a name", () => {
    const z = renderZones(input());
    const f = z.forward.split("\n");
    expect(f).toContain("kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1");
    expect(f).toContain("_http._tcp.api.web.svc.cluster.local. 5 IN SRV 0 100 80 api.web.svc.cluster.local.");
    expect(f).toContain("db.web.svc.cluster.local. 5 IN A 10.0.1.21");
    expect(f).toContain("db.web.svc.cluster.local. 5 IN A 10.0.1.22");
    expect(f).toContain("db-0.db.web.svc.cluster.local. 5 IN A 10.0.1.21");
    expect(f).toContain("10-0-1-22.db.web.svc.cluster.local. 5 IN A 10.0.1.22");
    expect(f).toContain(
      "_pg._tcp.db.web.svc.cluster.local. 5 IN SRV 0 100 5432 db-0.db.web.svc.cluster.local.",
    );
    expect(f).toContain("out.web.svc.cluster.local. 5 IN CNAME foo.example.com.");
    expect(f).toContain("10-0-1-21.web.pod.cluster.local. 5 IN A 10.0.1.21");
    expect(z.forward).not.toMatch(/Bad_Name|evil|attacker|not-an-ip/);
    // An unnamed port has no SRV record.
    expect(z.forward).not.toContain("_udp.api");
    expect(z.reverse.split("\n")).toContain("7.4.96.10.in-addr.arpa. 5 IN PTR api.web.svc.cluster.local.");
    expect(z.reverse.split("\n")).toContain(
      "21.1.0.10.in-addr.arpa. 5 IN PTR db-0.db.web.svc.cluster.local.",
    );
    expect(z.forward).toMatch(/^@ 5 IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. 7 /m);
  });
});

describe("named serves them (real namespace, dig)", () => {
  let dir = "";
  let named: Named | null = null;
  const dig = (...q: string[]): string[] =>
    sh("ip", "netns", "exec", NS, "dig", `@${IP}`, "+short", "+time=2", "+tries=2", ...q)
      .trim()
      .split("\n")
      .filter((l) => l !== "")
      .sort();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-dns-"));
    sh("ip", "netns", "add", NS);
    sh("ip", "-n", NS, "link", "set", "lo", "up");
    sh("ip", "-n", NS, "addr", "add", `${IP}/32`, "dev", "lo");
    named = await startNamed({ netns: NS, ip: IP, dir, zones: renderZones(input()) });
  });

  afterAll(async () => {
    await named?.stop();
    try {
      execFileSync("ip", ["netns", "del", NS], { stdio: "ignore" });
    } catch {}
    await rm(dir, { recursive: true, force: true });
  });

  it("answers A, SRV, CNAME and PTR queries over UDP and TCP", () => {
    expect(dig("kubernetes.default.svc.cluster.local", "A")).toEqual(["10.96.0.1"]);
    expect(dig("+tcp", "kubernetes.default.svc.cluster.local", "A")).toEqual(["10.96.0.1"]);
    expect(dig("db.web.svc.cluster.local", "A")).toEqual(["10.0.1.21", "10.0.1.22"]);
    expect(dig("_http._tcp.api.web.svc.cluster.local", "SRV")).toEqual([
      "0 100 80 api.web.svc.cluster.local.",
    ]);
    expect(dig("out.web.svc.cluster.local", "CNAME")).toEqual(["foo.example.com."]);
    expect(dig("-x", "10.96.4.7")).toEqual(["api.web.svc.cluster.local."]);
    expect(dig("10-0-1-21.web.pod.cluster.local", "A")).toEqual(["10.0.1.21"]);
    // Outside its zones it answers nothing (no recursion, no upstream).
    expect(dig("example.com", "A")).toEqual([]);
  });

  it("a reload brings changed records and keeps answering", async () => {
    const next = input({ serial: 8 });
    next.services[3] = {
      namespace: "web",
      name: "out",
      clusterIP: "",
      externalName: "bar.example.com",
      ports: [],
    };
    await named!.load(renderZones(next));
    let answer: string[] = [];
    for (let i = 0; i < 50 && answer[0] !== "bar.example.com."; i++) {
      answer = dig("out.web.svc.cluster.local", "CNAME");
      expect(dig("kubernetes.default.svc.cluster.local", "A")).toEqual(["10.96.0.1"]);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(answer).toEqual(["bar.example.com."]);
  });
});
