// The netlink helper (dist/bin/eniway-netlink, the daemon's own executable)
// on real namespaces: it wires a pod's side exactly as the `ip -batch` lines
// do, reports the kernel's errors as `ip` would, and a helper that dies or
// stalls falls back to `ip -batch` without losing the ADD.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HelperUnavailable,
  type NetlinkHelper,
  podSideVia,
  startNetlinkHelper,
} from "../../cni/datapath/netlink.js";
import { addPod, ipPodSide, type PodSpec, wiringOf } from "../../cni/datapath/pod.js";
import { CommandError } from "../../lib/exec.js";
import { silentLogger } from "../../lib/log.js";
import { BUILT } from "../../lib/process.js";
import { sh } from "../helpers/netns.js";

const P = `ewn${process.pid % 100000}`;
const NODE = `${P}-node`;
const POD = `${P}-pod`;
const nsPath = (n: string): string => `/var/run/netns/${n}`;
const spec: PodSpec = {
  containerId: `${P}ctr`,
  ifname: "eth0",
  netns: nsPath(POD),
  ip: "10.9.3.4",
  table: 1001,
  mtu: 1450,
};
const w = wiringOf(spec.containerId, spec.ifname);

/** The pod's side and the host veth as `ip -j` shows them, without the indexes that change each time. */
function snapshot(): unknown {
  const j = (ns: string, ...args: string[]): unknown[] =>
    JSON.parse(sh("ip", "-n", ns, "-j", ...args)) as unknown[];
  const strip = (v: unknown): unknown =>
    JSON.parse(JSON.stringify(v), (k, x: unknown) =>
      ["ifindex", "link_index", "link_netnsid", "preferred_life_time", "valid_life_time"].includes(k)
        ? undefined
        : x,
    );
  return strip({
    podLinks: j(POD, "link", "show"),
    podAddrs: j(POD, "addr", "show"),
    podRoutes: j(POD, "route", "show"),
    podNeigh: j(POD, "neigh", "show"),
    hostVeth: j(NODE, "link", "show", "dev", w.hostIfname),
  });
}

/** Removes the pair; the pod's namespace keeps lo as it was left. */
function unwire(): void {
  sh("ip", "-n", NODE, "link", "del", "dev", w.hostIfname);
}

const noNode = { v4: async (): Promise<void> => {}, v6: async (): Promise<void> => {} };

describe("netlink helper", () => {
  let helper: NetlinkHelper;
  let dir: string;

  beforeAll(() => {
    for (const n of [NODE, POD]) sh("ip", "netns", "add", n);
    helper = startNetlinkHelper(BUILT.netlink, silentLogger);
    dir = mkdtempSync(join(tmpdir(), "eniway-nl-"));
  });

  afterAll(() => {
    helper.close();
    for (const n of [NODE, POD]) {
      try {
        sh("ip", "netns", "del", n);
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
    expect(sh("ip", "netns", "list")).not.toContain(P);
  });

  it("wires the pod's side exactly as the ip -batch lines do", async () => {
    await ipPodSide(nsPath(NODE), spec, w);
    const byIp = snapshot();
    unwire();
    await podSideVia(helper, () => Promise.reject(new Error("no fallback expected")))(nsPath(NODE), spec, w);
    const byHelper = snapshot();
    expect(byHelper).toEqual(byIp);
    // And it is a working pair: the pod's gateway neighbour is the host veth's MAC.
    expect(JSON.stringify(byHelper)).toContain(w.hostMac);
    expect(sh("ip", "-n", POD, "-br", "addr", "show", "dev", "eth0")).toContain("10.9.3.4/32");
  });

  it("wires a dual-stack pod's side (its IPv6 /128, route and neighbour too) exactly as the ip -batch lines do", async () => {
    unwire();
    const dual: PodSpec = { ...spec, ip6: "fd00:10:0:1::2a" };
    await ipPodSide(nsPath(NODE), dual, w);
    const byIp = snapshot();
    unwire();
    await podSideVia(helper, () => Promise.reject(new Error("no fallback expected")))(nsPath(NODE), dual, w);
    const byHelper = snapshot();
    expect(byHelper).toEqual(byIp);
    expect(sh("ip", "-n", POD, "-6", "addr", "show", "dev", "eth0")).toMatch(
      /fd00:10:0:1::2a\/128 scope global nodad/,
    );
    expect(sh("ip", "-n", POD, "-6", "route", "show")).toContain("default via fe80::1 dev eth0");
    expect(sh("ip", "-n", POD, "-6", "neigh", "show")).toContain(
      `fe80::1 dev eth0 lladdr ${w.hostMac} PERMANENT`,
    );
  });

  it("says File exists as ip does, and addPod clears an earlier ADD's leftovers", async () => {
    const err = await helper.wirePod({ ...fields(), netns: nsPath(POD) }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).stderr).toMatch(/create veth: File exists/);
    // The leftover pair is still there; a second ADD of the same attachment replaces it.
    const via = podSideVia(helper, ipPodSide);
    await addPod(nsPath(NODE), spec, noNode, via);
    expect(sh("ip", "-n", POD, "-br", "addr", "show", "dev", "eth0")).toContain("10.9.3.4/32");
    unwire();
  });

  it("reports what is not a namespace, and creates nothing", async () => {
    const missing = await helper.wirePod({ ...fields(), netns: "/nonexistent/ns" }).catch((e: Error) => e);
    expect(String(missing)).toMatch(/open pod namespace: No such file or directory/);
    const notNs = await helper.wirePod({ ...fields(), netns: "/etc/hostname" }).catch((e: Error) => e);
    expect(String(notNs)).toMatch(/enter pod namespace: Invalid argument/);
    expect(sh("ip", "-n", NODE, "-br", "link")).not.toContain(w.hostIfname);
    // The helper is still in its own namespace: it goes on serving.
    await helper.wirePod({ ...fields(), netns: nsPath(POD) });
    unwire();
  });

  it("refuses a request the kernel must not see, before it reaches the helper", () => {
    expect(() => helper.wirePod({ ...fields(), ifname: "eth0; reboot" })).toThrow(/invalid ifname/);
    expect(() => helper.wirePod({ ...fields(), netns: "relative/path" })).toThrow(/invalid netns/);
    expect(() => helper.wirePod({ ...fields(), mtu: 70000 })).toThrow(/invalid mtu/);
  });

  it("a helper that dies or stalls: the request falls back to ip -batch, and the helper rests", async () => {
    const script = (name: string, body: string): string => {
      const f = join(dir, name);
      writeFileSync(f, `#!/bin/sh\n${body}\n`);
      chmodSync(f, 0o755);
      return f;
    };
    for (const [bin, timeoutMs] of [
      [script("dies", "read line; kill -9 $$"), 10_000],
      [script("stalls", "exec sleep 60"), 300],
      [join(dir, "absent"), 10_000],
    ] as const) {
      const h = startNetlinkHelper(bin, silentLogger, { timeoutMs, restMs: 60_000 });
      const first = await h.wirePod({ ...fields(), netns: nsPath(POD) }).catch((e: Error) => e);
      expect(first, bin).toBeInstanceOf(HelperUnavailable);
      // Resting: the next request fails at once, without starting it again.
      const t = performance.now();
      expect(await h.wirePod({ ...fields(), netns: nsPath(POD) }).catch((e: Error) => e)).toBeInstanceOf(
        HelperUnavailable,
      );
      expect(performance.now() - t).toBeLessThan(1000);
      // Through podSideVia the ADD still happens, with ip -batch.
      await addPod(nsPath(NODE), spec, noNode, podSideVia(h, ipPodSide));
      expect(sh("ip", "-n", POD, "-br", "addr", "show", "dev", "eth0")).toContain("10.9.3.4/32");
      unwire();
      h.close();
    }
  });
});

function fields() {
  return {
    netns: nsPath(POD),
    nodeNetns: nsPath(NODE),
    ifname: spec.ifname,
    podMac: w.podMac,
    hostIfname: w.hostIfname,
    hostMac: w.hostMac,
    mtu: spec.mtu,
    ip: spec.ip,
    gateway: "169.254.1.1",
  };
}
