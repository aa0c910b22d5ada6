// Chaos through the whole path: runtime → compiled plugin → daemon → cloud →
// kernel. A two-node sandbox; on node a, concurrent loops ADD, CHECK and DEL
// pods through the plugin as containerd calls it (DEL after a failed ADD,
// every DEL twice) while the node's daemon is killed with SIGKILL at random
// points and started again, and the simulator fails 20 % of cloud calls
// (errors, throttling, lost replies). Meanwhile no IP is ever on two pods and
// every successful ADD gives a pod that reaches a pod on node b through the
// VPC (whose source check drops traffic from the wrong ENI). A DEL that finds
// the daemon down succeeds without it (the forwarder records it in
// SOCKET.del/), so its IP stays allocated until the daemon, back, completes
// the recorded DEL, sees the pod's namespace gone, or a runtime's CNI GC
// leaves it out: the test runs one after each restart, with every attachment
// it knows, while ADDs go on (the daemon leaves those alone). Afterwards, once a last CNI GC has run: pool, cloud
// and kernel agree, nothing of a deleted pod is left, and no ENI leaks. ENIWAY_RANDOM_SEED=N replays a
// run; ENIWAY_CHAOS_KILLS=N kills more often; ENIWAY_KEEP=DIR copies the
// sandbox (daemon logs, stores) there before it is removed.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkInvariants } from "../../cloud/simulator/state.js";
import { socketRequest } from "../../lib/http.js";
import { silentLogger } from "../../lib/log.js";
import { BUILT, hasExited, pidAlive, waitExit } from "../../lib/process.js";
import { sleep } from "../../lib/time.js";
import { netconf, runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { settledProblems } from "../helpers/agreement.js";
import { cleanUp, sh, tryPing } from "../helpers/netns.js";
import { prng } from "../helpers/prng.js";
import { errorTotal, readSimStats } from "../helpers/sim-stats.js";

const SEED = Number(process.env.ENIWAY_RANDOM_SEED ?? Date.now() % 1_000_000);
const KILLS = Number(process.env.ENIWAY_CHAOS_KILLS ?? 30);
const WORKERS = 4;
const PREFIX = `ewch${process.pid % 10000}`;
const CLUSTER = "sandbox";
const FAULTS = {
  errorRate: 0.2,
  errorCodes: ["InternalError", "ServiceUnavailable", "Throttling"],
  // Some replies are lost after the action took effect.
  actions: { "*": { code: "ServiceUnavailable", rate: 0.05, afterEffect: true } },
};

interface Pod {
  id: string;
  ns: string;
  ip: string;
  result: Record<string, unknown>;
}

describe(`chaos through the real plugin (seed ${SEED}, ${KILLS} SIGKILLs, 20 % cloud faults)`, () => {
  let dir: string;
  let sb: Sandbox;
  let nodeA: SandboxNode;
  let nodeB: SandboxNode;
  let conf: Record<string, unknown>;
  let daemon: ChildProcess | null = null;
  let ref: Pod;
  const live = new Map<string, Pod>(); // containerId → pod, until its DEL answered success
  const namespaces = new Set<string>();
  const random = prng(SEED);

  const cni = async (command: string, id: string, ns: string, prevResult?: Record<string, unknown>) => {
    const run = runPlugin(
      nodeA,
      {
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: ns ? `/var/run/netns/${ns}` : "",
        CNI_IFNAME: "eth0",
      },
      prevResult ? { ...conf, prevResult } : conf,
    );
    const r = await Promise.race([run, sleep(60_000).then(() => null)]);
    if (!r) throw new Error(`${command} ${id} did not end within 60 s`);
    // stdout is the result, nothing, or the spec's error object with a code.
    if (r.code !== 0) {
      const err = JSON.parse(r.out) as { code?: unknown; msg?: unknown };
      expect(typeof err.code, `${command} ${id}: ${r.out}`).toBe("number");
      expect(typeof err.msg, `${command} ${id}: ${r.out}`).toBe("string");
      return { ok: false as const, code: err.code as number, out: r.out };
    }
    return { ok: true as const, out: r.out };
  };

  /** DEL until it succeeds, as a runtime retries it; it must succeed soon. */
  const del = async (id: string, ns: string, prevResult?: Record<string, unknown>): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const r = await cni("DEL", id, ns, prevResult);
      if (r.ok) return;
      expect(attempt, `DEL ${id} keeps failing: ${r.out}`).toBeLessThan(50);
      await sleep(200);
    }
  };

  const startDaemon = async (): Promise<ChildProcess> => {
    const log = await open(join(dir, "sb", "sandbox-a", "daemon.log"), "a");
    const child = spawn(
      process.execPath,
      [BUILT.cli, "daemon", "--config", join(dir, "sb", "sandbox-a", "config.json")],
      {
        stdio: ["ignore", log.fd, log.fd],
      },
    );
    await log.close();
    return child;
  };

  const ready = async (ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const r = await socketRequest(nodeA.socket, "GET", "/readyz", undefined, 1000).catch(() => null);
      if (r?.status === 200) return;
      await sleep(100);
    }
    throw new Error(`node a's daemon not ready within ${ms} ms`);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-chaos-"));
    sb = await sandboxUp({
      dir: join(dir, "sb"),
      nodes: 2,
      world: sandboxWorld(2, PREFIX),
      sets: [
        "datapath.repairSeconds=1",
        "pool.cooldownSeconds=0.2",
        "pool.idleReclaimSeconds=0.5",
        "pool.leakGraceSeconds=2",
        "pool.resyncSeconds=2",
        "pool.allocateTimeoutSeconds=5",
        "cni.netnsGoneGraceSeconds=1",
      ],
      log: silentLogger,
    });
    [nodeA, nodeB] = sb.file.nodes as [SandboxNode, SandboxNode];
    conf = await netconf(nodeA);
    // The pod everyone reaches: on node b, whose daemon is left alone.
    const ns = `${PREFIX}-ref`;
    sh("ip", "netns", "add", ns);
    namespaces.add(ns);
    const add = await runPlugin(
      nodeB,
      {
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: "chaos-ref",
        CNI_NETNS: `/var/run/netns/${ns}`,
        CNI_IFNAME: "eth0",
      },
      await netconf(nodeB),
    );
    expect(add.code, add.out).toBe(0);
    const result = JSON.parse(add.out) as { ips: { address: string }[] };
    ref = { id: "chaos-ref", ns, ip: result.ips[0]!.address.split("/")[0]!, result };
  }, 120_000);

  afterAll(async () => {
    if (daemon && !hasExited(daemon)) {
      daemon.kill("SIGTERM");
      await waitExit(daemon, 15_000);
    }
    if (process.env.ENIWAY_KEEP)
      execFileSync("cp", ["-r", join(dir, "sb"), process.env.ENIWAY_KEEP], { stdio: "ignore" });
    expect(await cleanUp({ sandbox: sb, namespaces, dir, prefix: PREFIX })).toEqual([]);
  });

  it("serves, checks and deletes pods through kills and faults; pool, cloud and kernel agree after", async () => {
    const counts = {
      add: 0,
      addFailed: {} as Record<number, number>,
      check: 0,
      checkFailed: 0,
      del: 0,
      kills: 0,
    };
    const deleted: Pod[] = [];
    const reasons = new Map<string, number>(); // why ADDs failed, numbers masked
    const restartToReady: number[] = []; // ms from a restart to ready (kills during start-up excepted)
    const ipOwner = new Map<string, string>(); // IP → containerId of a live pod
    // Attachments from their ADD until their first successful DEL: what a runtime hands to GC.
    const attached = new Set<string>();
    let gcRuns = 0;
    let stop = false;

    await fetch(`${sb.file.sim.endpoint}/admin/faults`, { method: "PUT", body: JSON.stringify(FAULTS) });

    const killer = async (): Promise<void> => {
      let pid = sb.file.pids[0]!;
      while (counts.kills < KILLS && !stop) {
        // One kill in five lands during the start-up; the others 1–4 s into serving, once an ADD was served.
        if (counts.kills > 0 && random() < 0.2) await sleep(random() * 800);
        else {
          const t = Date.now();
          await ready(60_000);
          if (counts.kills > 0) restartToReady.push(Date.now() - t);
          await runtimeGc();
          const served = counts.add;
          await sleep(1000 + random() * 3000);
          // On a loaded machine an ADD can outlast that: the kill waits for one served ADD (at most 10 s
          // more), so that kills land among real work and enough pods go through for the checks below.
          const until = Date.now() + 10_000;
          while (counts.add === served && Date.now() < until && !stop) await sleep(100);
        }
        if (daemon) daemon.kill("SIGKILL");
        else process.kill(pid, "SIGKILL");
        while (daemon ? !hasExited(daemon) : pidAlive(pid)) await sleep(20);
        counts.kills++;
        daemon = await startDaemon();
        pid = daemon.pid!;
      }
      stop = true;
    };

    /** A CNI 1.1 GC as a runtime sends it: every attachment it still knows is valid. */
    const gc = (valid: Iterable<string>) =>
      runPlugin(
        nodeA,
        { CNI_COMMAND: "GC", CNI_PATH: nodeA.cniBinDir },
        {
          ...conf,
          cniVersion: "1.1.0",
          "cni.dev/valid-attachments": [...valid].map((id) => ({ containerID: id, ifname: "eth0" })),
        },
      );
    const runtimeGc = async (): Promise<void> => {
      if ((await gc(attached)).code === 0) gcRuns++; // a runtime tries again later when the daemon is down
    };

    const remove = async (pod: Pod, prevResult?: Record<string, unknown>): Promise<void> => {
      // The first DEL that succeeds ends the pod's hold on its IP (containerd's StopPodSandbox);
      // the second comes with RemovePodSandbox.
      await del(pod.id, pod.ns, prevResult);
      attached.delete(pod.id);
      live.delete(pod.id);
      if (pod.ip && ipOwner.get(pod.ip) === pod.id) ipOwner.delete(pod.ip);
      await del(pod.id, pod.ns, prevResult);
      counts.del++;
      sh("ip", "netns", "del", pod.ns);
      namespaces.delete(pod.ns);
      deleted.push(pod);
    };

    const worker = async (w: number): Promise<void> => {
      const mine: Pod[] = [];
      for (let n = 0; !stop; n++) {
        const id = `chaos-${SEED}-${w}-${n}`;
        const ns = `${PREFIX}-${w}-${n}`;
        sh("ip", "netns", "add", ns);
        namespaces.add(ns);
        attached.add(id);
        const add = await cni("ADD", id, ns);
        if (!add.ok) {
          counts.addFailed[add.code] = (counts.addFailed[add.code] ?? 0) + 1;
          const e = JSON.parse(add.out) as { msg: string; details?: string };
          const msg = `${e.msg} (${e.details ?? ""})`.replace(/[0-9]+/g, "N");
          reasons.set(msg, (reasons.get(msg) ?? 0) + 1);
          await remove({ id, ns, ip: "", result: {} });
          await sleep(200 + random() * 300); // a runtime waits before it tries the sandbox again
          continue;
        }
        counts.add++;
        const result = JSON.parse(add.out) as { ips: { address: string }[] };
        const pod: Pod = { id, ns, ip: result.ips[0]!.address.split("/")[0]!, result };
        const other = ipOwner.get(pod.ip);
        expect(other, `${pod.ip} given to ${id} while ${other} holds it`).toBeUndefined();
        ipOwner.set(pod.ip, id);
        live.set(id, pod);
        mine.push(pod);
        // The answer is only worth something if the pod reaches another node through the VPC.
        let reached = false;
        for (let i = 0; i < 20 && !reached; i++) {
          reached = tryPing(ns, ref.ip);
          if (!reached) await sleep(250);
        }
        expect(reached, `${id} (${pod.ip}) cannot reach ${ref.ip} on node b`).toBe(true);
        if (random() < 0.5) {
          const check = await cni("CHECK", id, ns, pod.result);
          if (check.ok) counts.check++;
          else counts.checkFailed++;
        }
        if (mine.length > 2 || random() < 0.3) {
          const old = mine.splice(Math.floor(random() * mine.length), 1)[0]!;
          await remove(old, old.result);
        }
      }
    };

    // A loop that fails stops the others before the test ends: no daemon is started after afterAll.
    const loops = [killer(), ...Array.from({ length: WORKERS }, (_, w) => worker(w))].map((p) =>
      p.catch((e: unknown) => {
        stop = true;
        throw e;
      }),
    );
    const failed = (await Promise.allSettled(loops)).find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    expect(counts.kills).toBeGreaterThanOrEqual(KILLS);
    // Enough pods went through for the checks below to mean something (fewer on a busy machine).
    expect(counts.add, `${JSON.stringify(counts)} ${JSON.stringify([...reasons])}`).toBeGreaterThanOrEqual(
      15,
    );

    const injected = errorTotal(await readSimStats(sb.file.sim.endpoint));
    await fetch(`${sb.file.sim.endpoint}/admin/faults`, { method: "PUT", body: "{}" });
    await ready(60_000);

    // Every live pod still reaches node b, and node b reaches it back.
    for (const pod of live.values()) {
      expect(tryPing(pod.ns, ref.ip), `${pod.id} → ${ref.ip}`).toBe(true);
      expect(tryPing(ref.ns, pod.ip), `${ref.ip} → ${pod.id} ${pod.ip}`).toBe(true);
    }

    // What a runtime's CNI GC releases: allocations of pods no DEL released
    // (a DEL that came while the daemon was down is recorded and completed
    // when it is back, before it is ready).
    const allocationsOf = async () =>
      (
        (await socketRequest(nodeA.socket, "GET", "/v1/allocations")).body as {
          allocations: { containerId: string; ip: string; eniId: string }[];
        }
      ).allocations;
    const lingering = (await allocationsOf()).filter((a) => !live.has(a.containerId)).length;
    const gcRun = await gc(live.keys());
    expect(gcRun.code, gcRun.out).toBe(0);

    // Pool, cloud and kernel agree (after drift repair and the leak grace).
    const problems = await settledProblems({
      sim: sb.sim,
      clusterId: CLUSTER,
      nodes: [nodeA],
      podsOf: () => [...live.values()].map((p) => ({ containerId: p.id, ip: p.ip })),
    });
    expect(problems).toEqual([]);
    for (const pod of deleted) expect(namespaces.has(pod.ns)).toBe(false);
    expect(checkInvariants(sb.sim.state)).toEqual([]);
    expect(injected, "cloud faults were injected").toBeGreaterThan(20);
    console.log(
      `chaos (seed ${SEED}): ${JSON.stringify(counts)}; ${injected} cloud errors; ${live.size} pods live at the end, ${deleted.length} deleted; ${gcRuns} runtime GCs during the run, then ${lingering} allocations released by the last; ADDs refused: ${JSON.stringify([...reasons])}; restart → ready median ${restartToReady.sort((x, y) => x - y)[restartToReady.length >> 1]} ms`,
    );
  }, 900_000);
});
