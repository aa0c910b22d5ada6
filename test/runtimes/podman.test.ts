// podman 4.3.1 (CNI backend) as a real CNI client of eniway: containers on
// an eniway network get VPC addresses from their node's pool, ping each other
// on one node and across nodes, and `podman rm` / `stop` / a container that
// exits by itself all reach the daemon as DEL. podman runs with a private
// containers.conf, storage and network folder, so it never touches the
// machine's podman state.

import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SandboxNode } from "../../src/sandbox/sandbox.js";
import {
  allocations,
  busyboxRootfsTar,
  hostVeths,
  netnsNames,
  podRules,
  quiet,
  type Ran,
  REFERENCE_PLUGINS,
  type RuntimeSandbox,
  requireTools,
  run,
  startSandbox,
  uniquePrefix,
  waitFor,
} from "./helpers.js";
import { privatePodman } from "./podman-env.js";

const PREFIX = uniquePrefix("p");
const IMAGE = `localhost/${PREFIX}-busybox:latest`;
/** Where libcni (inside podman) caches each attachment's result: `<network>-<containerID>-<ifname>`. */
const LIBCNI_CACHE = "/var/lib/cni/results";

interface Ctr {
  name: string;
  id: string;
  node: SandboxNode;
  network: string;
  ip: string;
  /** The container's network namespace, as podman created it. */
  netnsPath: string;
}

describe("podman with the eniway CNI network", () => {
  let rs: RuntimeSandbox;
  let work: string;
  let env: Record<string, string>;
  let globalArgs: string[];
  const networkOf = new Map<string, string>(); // node name → podman network name
  const ctrs = new Map<string, Ctr>();

  const podman = (args: string[], timeoutMs = 60_000): Promise<Ran> =>
    run(["podman", ...globalArgs, ...args], { env, timeoutMs });
  const podmanOk = async (args: string[]): Promise<string> => {
    const r = await podman(args);
    expect(r.code, `podman ${args.join(" ")}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
    return r.stdout.trim();
  };

  beforeAll(async () => {
    requireTools({
      podman: "podman",
      runc: "runc",
      conmon: "conmon",
      "/bin/busybox": "busybox-static",
      tar: "tar",
    });
    const version = (await run(["podman", "--version"])).stdout;
    expect(version, "these tests are written for podman 4 with the CNI backend").toMatch(
      /podman version 4\./,
    );

    work = await mkdtemp(join(tmpdir(), `${PREFIX}-podman-`));
    rs = await startSandbox(PREFIX, 2);
    const netDir = join(work, "net.d");
    await mkdir(netDir);
    for (const node of rs.nodes) {
      const name = `${PREFIX}-${node.name.slice(-1)}`;
      networkOf.set(node.name, name);
      const conf = JSON.parse(readFileSync(node.cniConfFile, "utf8")) as { plugins: unknown[] };
      // podman 4.3.1's libcni reads results up to CNI 1.0.0 (see the last test).
      await writeFile(
        join(netDir, `${name}.conflist`),
        JSON.stringify({ cniVersion: "1.0.0", name, plugins: conf.plugins }, null, 2),
      );
    }
    ({ env, globalArgs } = await privatePodman(work, {
      pluginDirs: [rs.nodes[0]!.cniBinDir, REFERENCE_PLUGINS],
      configDir: netDir,
    }));
    await podmanOk(["import", await busyboxRootfsTar(work), IMAGE]);
    const networks = await podmanOk(["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for (const n of networkOf.values()) expect(networks).toContain(`${n} eniway`);
  }, 120_000);

  afterAll(async () => {
    const problems: string[] = [];
    try {
      if (globalArgs) {
        const rmAll = await podman(["rm", "-af", "-t", "0"]);
        if (rmAll.code !== 0) problems.push(`podman rm -af: ${rmAll.stderr}`);
        await podman(["rmi", "-af"]);
      }
      // Anything podman left mounted under our folder (it should be nothing).
      const mounts = readFileSync("/proc/self/mounts", "utf8")
        .split("\n")
        .map((l) => l.split(" ")[1] ?? "")
        .filter((m) => work && m.startsWith(work));
      if (mounts.length) problems.push(`mounts left: ${mounts.join(", ")}`);
      for (const m of mounts.reverse()) quiet(["umount", "-l", m]);
      for (const c of ctrs.values())
        if (netnsNames().includes(c.netnsPath.split("/").pop()!))
          problems.push(`container netns left: ${c.netnsPath}`);
    } finally {
      await rs?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    }
    const left = netnsNames().filter((n) => n.startsWith(PREFIX));
    expect(left, "namespaces of this run left behind").toEqual([]);
    const cache = readdirSafe(LIBCNI_CACHE).filter((f) => f.startsWith(PREFIX));
    expect(cache, "libcni cache entries of this run left behind").toEqual([]);
    expect(problems).toEqual([]);
  }, 120_000);

  async function runCtr(name: string, node: SandboxNode): Promise<Ctr> {
    const network = networkOf.get(node.name)!;
    const id = await podmanOk([
      "run",
      "-d",
      "--name",
      name,
      "--network",
      network,
      "--cap-add=NET_RAW",
      IMAGE,
      "sleep",
      "600",
    ]);
    const inspect = JSON.parse(await podmanOk(["inspect", id])) as {
      NetworkSettings: { SandboxKey: string; Networks: Record<string, { IPAddress: string }> };
    }[];
    const ns = inspect[0]!.NetworkSettings;
    const c: Ctr = {
      name,
      id,
      node,
      network,
      ip: ns.Networks[network]?.IPAddress ?? "",
      netnsPath: ns.SandboxKey,
    };
    ctrs.set(name, c);
    return c;
  }

  const inside = (c: Ctr, ...argv: string[]): Promise<Ran> => podman(["exec", c.name, ...argv]);

  it("containers on node A and node B get VPC addresses from their node's pool", async () => {
    const [a, b] = rs.nodes as [SandboxNode, SandboxNode];
    const a1 = await runCtr(`${PREFIX}-a1`, a);
    const a2 = await runCtr(`${PREFIX}-a2`, a);
    const b1 = await runCtr(`${PREFIX}-b1`, b);
    const state = (await (await fetch(`${rs.sb.file.sim.endpoint}/admin/state`)).json()) as {
      networkInterfaces: { NetworkInterfaceId: string; InstanceId: string }[];
    };
    for (const c of [a1, a2, b1]) {
      expect(c.ip, `${c.name}'s address`).toMatch(/^10\.0\.\d+\.\d+$/);
      // What the container itself sees on eth0.
      const addr = await inside(c, "ip", "-o", "-4", "addr", "show", "dev", "eth0");
      expect(addr.code, addr.stderr).toBe(0);
      expect(addr.stdout).toContain(`inet ${c.ip}/32`);
      // The node's daemon holds exactly this attachment, on an ENI of that node.
      const mine = (await allocations(c.node)).filter((x) => x.containerId === c.id);
      expect(mine, `allocations of ${c.name} on ${c.node.name}`).toHaveLength(1);
      expect(mine[0]).toMatchObject({ ifname: "eth0", ip: c.ip, pod: { name: c.name } });
      const eni = state.networkInterfaces.find((e) => e.NetworkInterfaceId === mine[0]!.eniId);
      expect(eni?.InstanceId).toBe(c.node.instanceId);
    }
    expect(new Set([a1.ip, a2.ip, b1.ip]).size).toBe(3);
    expect((await hostVeths(a)).length).toBe(2);
    expect((await hostVeths(b)).length).toBe(1);
  });

  it("they ping each other on one node and across nodes", async () => {
    const a1 = ctrs.get(`${PREFIX}-a1`)!;
    const a2 = ctrs.get(`${PREFIX}-a2`)!;
    const b1 = ctrs.get(`${PREFIX}-b1`)!;
    for (const [from, to] of [
      [a1, a2],
      [a2, a1],
      [a1, b1],
      [b1, a2],
    ] as const) {
      const r = await inside(from, "ping", "-c", "2", "-i", "0.2", "-W", "2", to.ip);
      expect(r.code, `${from.name} → ${to.name} (${to.ip}):\n${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/2 packets transmitted, 2 packets received/);
    }
  });

  it("podman stop sends DEL and podman start sends ADD again for the same container", async () => {
    const a2 = ctrs.get(`${PREFIX}-a2`)!;
    await podmanOk(["stop", "-t", "0", a2.name]);
    expect((await allocations(a2.node)).map((x) => x.containerId)).not.toContain(a2.id);
    expect(await podRules(a2.node, a2.ip)).toEqual([]);
    await podmanOk(["start", a2.name]);
    const again = (await allocations(a2.node)).filter((x) => x.containerId === a2.id);
    expect(again).toHaveLength(1);
    const addr = await inside(a2, "ip", "-o", "-4", "addr", "show", "dev", "eth0");
    expect(addr.stdout).toContain(`inet ${again[0]!.ip}/32`);
    a2.ip = again[0]!.ip;
    const ping = await inside(ctrs.get(`${PREFIX}-b1`)!, "ping", "-c", "1", "-W", "2", a2.ip);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);
  });

  it("a container that exits by itself is torn down by podman's cleanup: DEL reaches the daemon", async () => {
    const a = rs.nodes[0]!;
    const network = networkOf.get(a.name)!;
    const name = `${PREFIX}-short`;
    const id = await podmanOk(["run", "-d", "--name", name, "--network", network, IMAGE, "sleep", "1"]);
    expect((await allocations(a)).map((x) => x.containerId)).toContain(id);
    await waitFor(
      `the allocation of ${name} to go`,
      async () => !(await allocations(a)).some((x) => x.containerId === id),
      20_000,
    );
    await podmanOk(["rm", name]);
  });

  it("podman rm -f: DEL reaches the daemons, no allocation, host veth, rule or netns is left", async () => {
    const all = [...ctrs.values()];
    const rmd = await podmanOk(["rm", "-f", "-t", "0", ...all.map((c) => c.name)]);
    expect(rmd.split("\n").sort()).toEqual(all.map((c) => c.name).sort());
    for (const node of rs.nodes) {
      expect(await allocations(node), `allocations on ${node.name}`).toEqual([]);
      expect(await hostVeths(node), `host veths in ${node.netns}`).toEqual([]);
    }
    for (const c of all) {
      expect(await podRules(c.node, c.ip), `rules for ${c.ip}`).toEqual([]);
      expect(netnsNames()).not.toContain(c.netnsPath.split("/").pop());
    }
    expect(readdirSafe(LIBCNI_CACHE).filter((f) => f.startsWith(PREFIX))).toEqual([]);
    expect(await podmanOk(["ps", "-aq"])).toBe("");
  });

  it("with a cniVersion 1.1.0 conflist podman 4.3.1 rejects the result, and its DEL undoes the ADD", async () => {
    // podman 4.3.1 vendors libcni 1.1.x, which parses results only up to
    // 1.0.0: the plugin's ADD succeeds, podman cannot read the answer, and
    // calls DEL. Nothing may be left of the attachment.
    const a = rs.nodes[0]!;
    const name = `${PREFIX}-v11`;
    const conf = JSON.parse(readFileSync(a.cniConfFile, "utf8")) as { plugins: unknown[] };
    const netDir = join(work, "net.d");
    await writeFile(
      join(netDir, `${name}.conflist`),
      JSON.stringify({ cniVersion: "1.1.0", name, plugins: conf.plugins }),
    );
    try {
      const r = await podman(["run", "-d", "--name", name, "--network", name, IMAGE, "sleep", "600"]);
      if (r.code === 0) {
        // A podman whose libcni reads 1.1.0 results: then it must simply work.
        const id = r.stdout.trim();
        expect((await allocations(a)).map((x) => x.containerId)).toContain(id);
        await podmanOk(["rm", "-f", "-t", "0", name]);
      } else {
        expect(r.stderr).toMatch(/unsupported CNI result version "1\.1\.0"/);
      }
      expect(await allocations(a)).toEqual([]);
      expect(await hostVeths(a)).toEqual([]);
    } finally {
      await podman(["rm", "-f", "-t", "0", name]);
      await rm(join(netDir, `${name}.conflist`), { force: true });
    }
  });
});

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
