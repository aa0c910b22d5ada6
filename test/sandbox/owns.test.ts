// eniway touches only what it owns, through the compiled plugin and the real
// daemon of a sandbox node: nothing on the daemon's socket frees a wired
// pod's IP; a GC releases only its own network's attachments and never one
// whose ADD is still running; a DEL with the daemon down succeeds at once and
// is recorded, and the daemon completes it at its start (the pod's own veth,
// rules and route, never an interface prevResult merely names; a record a
// later ADD made stale is dropped); and an IP whose pod vanished without any
// DEL is released once its namespace has been gone for the grace.

import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, utimesSync } from "node:fs";
import { mkdtemp, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/datapath/names.js";
import { socketRequest } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { BUILT, hasExited, pidAlive, waitExit } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { cleanUp, sh, tryPing } from "../helpers/netns.js";

const PREFIX = `ewo${process.pid % 100000}`;
/** The daemon's default: how long a pod's namespace must be gone before its IP is released. */
const NETNS_GRACE_S = 30;

interface Pod {
  id: string;
  ns: string;
  ip: string;
  result: Record<string, unknown>;
}

describe("eniway touches only what it owns (sandbox node, compiled plugin, real daemon)", () => {
  let dir: string;
  let sb: Sandbox;
  let a: SandboxNode;
  let confA: Record<string, unknown>;
  let daemon: ChildProcess | null = null;
  let ref: Pod;
  const namespaces = new Set<string>();

  const cni = async (
    command: string,
    id: string,
    ns: string,
    conf: Record<string, unknown>,
    node: SandboxNode = a,
  ) =>
    runPlugin(node, { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: ns, CNI_IFNAME: "eth0" }, conf);
  const addPod = async (id: string, conf = confA, node: SandboxNode = a): Promise<Pod> => {
    const ns = `${PREFIX}-${id}`;
    sh("ip", "netns", "add", ns);
    namespaces.add(ns);
    const r = await cni("ADD", id, `/var/run/netns/${ns}`, conf, node);
    expect(r.code, r.out).toBe(0);
    const result = JSON.parse(r.out) as { ips: { address: string }[] };
    return { id, ns, ip: result.ips[0]!.address.split("/")[0]!, result };
  };
  const allocated = async (): Promise<Map<string, string>> => {
    const r = await socketRequest(a.socket, "GET", "/v1/allocations");
    const list = (r.body as { allocations: { containerId: string; ip: string }[] }).allocations;
    return new Map(list.map((x) => [x.containerId, x.ip]));
  };
  const gc = (conf: Record<string, unknown>, valid: Pod[]) =>
    runPlugin(
      a,
      { CNI_COMMAND: "GC" },
      {
        ...conf,
        cniVersion: "1.1.0",
        "cni.dev/valid-attachments": valid.map((p) => ({ containerID: p.id, ifname: "eth0" })),
      },
    );
  const rules = (): string => sh("ip", "-n", a.netns, "rule");
  const wired = (p: Pod): boolean =>
    rules().includes(`from ${p.ip} lookup`) &&
    sh("ip", "-n", a.netns, "link", "show").includes(hostVethName(p.id, "eth0"));
  const reaches = async (p: Pod): Promise<boolean> => {
    for (let i = 0; i < 10; i++) {
      if (tryPing(p.ns, ref.ip)) return true;
      await sleep(200);
    }
    return false;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-owns-"));
    sb = await sandboxUp({
      dir: join(dir, "sb"),
      nodes: 2,
      world: sandboxWorld(2, PREFIX),
      // Every ADD on an empty pool waits for its refill (an ADD in flight can be caught); GC's age floor off.
      sets: ["pool.minIdle=0", "pool.maxIdle=0", "cni.gcMinAgeSeconds=0"],
      log: silentLogger,
    });
    [a] = sb.file.nodes as [SandboxNode];
    confA = await netconf(a);
    const b = sb.file.nodes[1]!;
    ref = await addPod("ref", await netconf(b), b);
  }, 120_000);

  afterAll(async () => {
    if (daemon && !hasExited(daemon)) {
      daemon.kill("SIGTERM");
      await waitExit(daemon, 15_000);
    }
    expect(await cleanUp({ sandbox: sb, namespaces, dir, prefix: PREFIX })).toEqual([]);
  });

  it("nothing on the daemon's socket frees a wired pod's IP", async () => {
    const p = await addPod("wired");
    for (const path of ["/v1/release", "/v1/allocate"]) {
      const r = await socketRequest(a.socket, "POST", path, { containerId: p.id, ifname: "eth0" });
      expect(r.status, JSON.stringify(r.body)).toBe(404);
    }
    expect((await socketRequest(a.socket, "POST", "/v1/resync", {})).status).toBe(200);
    // A GC of another network with nothing listed.
    const other = await gc({ ...confA, name: "another-net" }, []);
    expect(other.code, other.out).toBe(0);
    expect((await allocated()).get(p.id)).toBe(p.ip);
    expect(wired(p)).toBe(true);
    expect(await reaches(p)).toBe(true);
  });

  it("two networks on one daemon: a GC keeps the other's pods and an ADD still in progress", async () => {
    const confB = { ...confA, name: "eniway-b" };
    const a1 = await addPod("a1");
    const a2 = await addPod("a2");
    const b1 = await addPod("b1", confB);
    const r = await gc(confA, [a1, ref]);
    expect(r.code, r.out).toBe(0);
    const after = await allocated();
    expect(after.has(a2.id), "a2 is network eniway's and unlisted").toBe(false);
    expect(rules()).not.toContain(`from ${a2.ip} lookup`);
    expect(after.get(a1.id)).toBe(a1.ip);
    expect(after.get(b1.id), "b1 belongs to eniway-b").toBe(b1.ip);
    expect(wired(b1)).toBe(true);
    expect(await reaches(b1)).toBe(true);
    // The wired pod of the first test is eniway's too, and unlisted: released with a2.
    expect(after.has("wired")).toBe(false);

    // An ADD of eniway-b that waits for its IP (the cloud answers Assign in 3 s) while eniway-b's GC runs.
    const latency = (await (await fetch(`${sb.file.sim.endpoint}/admin/latency`)).json()) as object;
    const slow = { ...latency, AssignPrivateIpAddresses: 3000, CreateNetworkInterface: 3000 };
    await fetch(`${sb.file.sim.endpoint}/admin/latency`, { method: "PUT", body: JSON.stringify(slow) });
    try {
      const b2ns = `${PREFIX}-b2`;
      sh("ip", "netns", "add", b2ns);
      namespaces.add(b2ns);
      const adding = cni("ADD", "b2", `/var/run/netns/${b2ns}`, confB);
      await sleep(1000); // the ADD is at the daemon, waiting for the refill
      const during = await gc(confB, [b1]);
      expect(during.code, during.out).toBe(0);
      const added = await adding;
      expect(added.code, added.out).toBe(0);
      const b2: Pod = {
        id: "b2",
        ns: b2ns,
        ip: (JSON.parse(added.out) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!,
        result: {},
      };
      expect((await allocated()).get("b2")).toBe(b2.ip);
      expect(wired(b2)).toBe(true);
      expect(await reaches(b2)).toBe(true);
    } finally {
      await fetch(`${sb.file.sim.endpoint}/admin/latency`, { method: "PUT", body: JSON.stringify(latency) });
    }
  });

  it("daemon down: DEL succeeds and is recorded; the daemon completes it at its start, removing only the pod's own wiring; an IP whose pod vanished without a DEL goes once its namespace has been gone long enough", async () => {
    const deleted = await addPod("deleted"); // DEL while the daemon is down, then its namespace deleted
    const kept = await addPod("kept"); // DEL while the daemon is down, its namespace kept
    const gone = await addPod("gone"); // no DEL ever, its namespace deleted
    const stale = await addPod("stale"); // a record older than its ADD: a later ADD made it stale
    const live = await addPod("live"); // never deleted
    // An IP the pool holds for no pod: idle, or cooling after an earlier test's DEL.
    let idle = "";
    for (let i = 0; i < 100 && !idle; i++) {
      const { ips } = (await socketRequest(a.socket, "GET", "/v1/ips")).body as {
        ips: { ip: string; phase: string }[];
      };
      idle = ips.find((x) => x.phase === "idle" || x.phase === "cooling")?.ip ?? "";
      if (!idle) await sleep(100);
    }
    expect(idle, "the pool has an idle or cooling IP").not.toBe("");
    const pid = sb.file.pids[0]!;
    process.kill(pid, "SIGKILL");
    while (pidAlive(pid)) await sleep(20);

    // An ADD killed after its wiring, before its allocation's write landed (the two run
    // alongside): a veth, route and rules for an IP the store still calls idle.
    const crashed = hostVethName("crashed", "eth0");
    sh("ip", "-n", a.netns, "link", "add", crashed, "type", "veth", "peer", "name", "ewcrashpeer");
    sh("ip", "-n", a.netns, "link", "set", crashed, "up");
    sh("ip", "-n", a.netns, "route", "add", `${idle}/32`, "dev", crashed);
    sh("ip", "-n", a.netns, "rule", "add", "priority", "512", "to", `${idle}/32`, "lookup", "main");
    sh("ip", "-n", a.netns, "rule", "add", "priority", "2048", "from", `${idle}/32`, "lookup", "1003");

    // A node interface that prevResult names right before the pod's interface.
    sh("ip", "-n", a.netns, "link", "add", "ewnode0", "type", "bridge");
    const named = JSON.parse(JSON.stringify(deleted.result)) as {
      interfaces: Record<string, unknown>[];
      ips: { interface: number }[];
    };
    const podIndex = named.interfaces.findIndex((i) => i.sandbox);
    named.interfaces.splice(podIndex, 0, { name: "ewnode0", mac: "02:00:00:00:0e:01" });
    for (const ip of named.ips) ip.interface += 1;
    const queue = `${a.socket}.del`;
    const started = performance.now();
    const del = await cni("DEL", deleted.id, `/var/run/netns/${deleted.ns}`, { ...confA, prevResult: named });
    const delMs = performance.now() - started;
    expect(del.code, del.out).toBe(0);
    expect(del.out).toBe("");
    expect(delMs, "a DEL with the daemon down never waits for it").toBeLessThan(5000);
    const delKept = await cni("DEL", kept.id, `/var/run/netns/${kept.ns}`, {
      ...confA,
      prevResult: kept.result,
    });
    expect(delKept.code, delKept.out).toBe(0);
    const staleDel = await cni("DEL", stale.id, `/var/run/netns/${stale.ns}`, confA);
    expect(staleDel.code, staleDel.out).toBe(0);
    const records = readdirSync(queue).sort();
    expect(records).toHaveLength(3);
    // The stale one: recorded before its attachment's current ADD.
    const staleRecord = records.find((r) =>
      readFileSync(join(queue, r), "utf8").includes(`CNI_CONTAINERID=${stale.id}\0`),
    )!;
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(join(queue, staleRecord), past, past);
    for (const ns of [deleted.ns, gone.ns]) {
      sh("ip", "netns", "del", ns);
      namespaces.delete(ns);
    }

    const log = await open(join(dir, "sb", a.name, "daemon.log"), "a");
    daemon = spawn(
      process.execPath,
      [BUILT.cli, "daemon", "--config", join(dir, "sb", a.name, "config.json")],
      {
        stdio: ["ignore", log.fd, log.fd],
      },
    );
    await log.close();
    const back = Date.now();
    for (;;) {
      const r = await socketRequest(a.socket, "GET", "/readyz", undefined, 1000).catch(() => null);
      if (r?.status === 200) break;
      expect(hasExited(daemon), "the restarted daemon exited").toBe(false);
      await sleep(50);
    }
    const ready = Date.now();
    // The crashed ADD's wiring is gone before the daemon is ready: its IP can be served again.
    expect(sh("ip", "-n", a.netns, "link", "show")).not.toContain(crashed);
    expect(rules()).not.toContain(`${idle} `);
    expect(sh("ip", "-n", a.netns, "route", "show", "exact", `${idle}/32`).trim()).toBe("");
    // The recorded DELs are done before the daemon is ready: IPs released, host sides gone.
    const atReady = await allocated();
    expect(atReady.has(deleted.id)).toBe(false);
    expect(atReady.has(kept.id)).toBe(false);
    expect(atReady.get(stale.id), "a stale record is dropped").toBe(stale.ip);
    expect(
      readdirSync(queue),
      readFileSync(join(dir, "sb", a.name, "daemon.log"), "utf8")
        .split("\n")
        .filter((l) => l.includes("DEL"))
        .join("\n"),
    ).toEqual([]);
    const links = sh("ip", "-n", a.netns, "link", "show");
    expect(links, "the node's interface survives").toContain("ewnode0");
    expect(links).not.toContain(hostVethName(deleted.id, "eth0"));
    expect(links).not.toContain(hostVethName(kept.id, "eth0"));
    for (const p of [deleted, kept]) {
      expect(rules()).not.toContain(`${p.ip} `);
      expect(sh("ip", "-n", a.netns, "route", "show", "exact", `${p.ip}/32`).trim()).toBe("");
    }
    // A pod that vanished without any DEL: its allocation stays through the grace, then goes.
    expect(atReady.get(gone.id)).toBe(gone.ip);
    while ((await allocated()).has(gone.id)) {
      expect(Date.now() - ready, "not released within the grace and one check").toBeLessThan(
        (NETNS_GRACE_S + 10) * 1000,
      );
      await sleep(200);
    }
    const releasedAfter = Date.now();
    expect(releasedAfter - ready).toBeGreaterThanOrEqual(NETNS_GRACE_S * 1000 - 1000);
    console.log(
      `netns gone: released ${((releasedAfter - ready) / 1000).toFixed(1)} s after the daemon was ready (${((releasedAfter - back) / 1000).toFixed(1)} s after its start; grace ${NETNS_GRACE_S} s)`,
    );
    // Pods whose namespace exists keep their IPs, one check later too.
    await sleep(6000);
    const now = await allocated();
    expect(now.get(stale.id)).toBe(stale.ip);
    expect(now.get(live.id)).toBe(live.ip);
    expect(wired(live)).toBe(true);
    expect(await reaches(live)).toBe(true);
    const metrics = await (await fetch(`${a.http}/metrics`)).text();
    expect(metrics).toMatch(/^eniway_cni_released_total\{reason="netns_gone"\} 1$/m);
    sh("ip", "-n", a.netns, "link", "del", "ewnode0");
  }, 120_000);
});
