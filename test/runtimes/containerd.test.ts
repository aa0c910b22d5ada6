// containerd as a real CNI client: a private containerd 1.6 (own root, state
// and socket in a temp dir) whose CRI plugin runs the sandbox's eniway
// plugin exactly as it would under kubelet. Driven through CRI like kubelet:
// RunPodSandbox → the pod gets a VPC address that is the daemon's allocation
// for that sandbox, labelled with the pod from CNI_ARGS; StopPodSandbox →
// the first DEL (netns + prevResult) releases it and unwires the host;
// RemovePodSandbox → the second DEL (empty CNI_NETNS, no prevResult) is fine.

import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { status as grpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostVethName } from "../../cni/datapath/names.js";
import { silentLogger } from "../../lib/log.js";
import { type Sandbox, type SandboxNode, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { call } from "../daemon-harness.js";
import { type CriClient, criClient } from "./cri.js";

const PREFIX = `ewc${randomBytes(3).toString("hex")}`;
const IMAGE = "eniway.test/pause:1";
const CNI_PLUGINS = "/usr/lib/cni";
const CGROUP_ROOT = "/sys/fs/cgroup";
const TOOLS = ["containerd", "containerd-shim-runc-v2", "ctr", "runc", "busybox", "tar"];

const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
const shAsync = (argv: string[], timeoutMs = 60_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
const which = (tool: string): string | null => {
  for (const d of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    if (d && existsSync(join(d, tool))) return join(d, tool);
  }
  return null;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every tool this test runs, or an error that says what to install: never a skip. */
function requireTools(): void {
  const missing = TOOLS.filter((t) => !which(t));
  for (const p of ["loopback"]) if (!existsSync(join(CNI_PLUGINS, p))) missing.push(join(CNI_PLUGINS, p));
  if (missing.length)
    throw new Error(
      `containerd test: missing ${missing.join(", ")}; run test/setup.sh ` +
        "(apt-get install --no-install-recommends containerd runc busybox-static containernetworking-plugins)",
    );
}

const sha256 = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

/**
 * An OCI image archive of a static busybox whose entrypoint sleeps forever,
 * the pause image of this test; named by the containerd image-name
 * annotation so `ctr images import` stores it as IMAGE.
 */
async function buildPauseArchive(dir: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  await mkdir(join(rootfs, "bin"), { recursive: true });
  for (const d of ["dev", "proc", "sys", "etc", "tmp"]) await mkdir(join(rootfs, d), { recursive: true });
  await copyFile(which("busybox")!, join(rootfs, "bin/busybox"));
  await symlink("busybox", join(rootfs, "bin/sh"));
  await symlink("busybox", join(rootfs, "bin/sleep"));
  const layerFile = join(dir, "layer.tar");
  sh(
    "tar",
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-C",
    rootfs,
    "-cf",
    layerFile,
    ".",
  );
  const layout = join(dir, "oci");
  const blobs = join(layout, "blobs/sha256");
  await mkdir(blobs, { recursive: true });
  const blob = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = sha256(data);
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layer = await blob(await readFile(layerFile));
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const config = await blob(
    Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: "linux",
        config: { Entrypoint: ["/bin/sleep", "2147483647"], WorkingDir: "/" },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = await blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    ),
  );
  await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          platform: { architecture: arch, os: "linux" },
          annotations: { "io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "1" },
        },
      ],
    }),
  );
  const archive = join(dir, "pause.oci.tar");
  sh(
    "tar",
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-C",
    layout,
    "-cf",
    archive,
    ".",
  );
  return archive;
}

interface Containerd {
  dir: string;
  socket: string;
  proc: ChildProcess;
  logFile: string;
  log(): string;
}

/** containerd's config: everything under `dir`, CRI on, only what the test needs. */
function containerdConfig(dir: string, cniBin: string, cniConf: string): string {
  const q = (s: string): string => JSON.stringify(s);
  const cri = `plugins."io.containerd.grpc.v1.cri"`;
  return `version = 2
root = ${q(join(dir, "root"))}
state = ${q(join(dir, "state"))}
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = ${q(join(dir, "containerd.sock"))}
[ttrpc]
  address = ${q(join(dir, "containerd.sock.ttrpc"))}
[debug]
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, "opt"))}

[${cri}]
  sandbox_image = ${q(IMAGE)}
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [${cri}.containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = ${q(which("runc") ?? "runc")}
        Root = ${q(join(dir, "runc"))}
  [${cri}.cni]
    bin_dir = ${q(cniBin)}
    conf_dir = ${q(cniConf)}
    max_conf_num = 1
`;
}

async function startContainerd(dir: string, cniBin: string, cniConf: string): Promise<Containerd> {
  const configFile = join(dir, "config.toml");
  await writeFile(configFile, containerdConfig(dir, cniBin, cniConf));
  const logFile = join(dir, "containerd.log");
  const out = await open(logFile, "a");
  const proc = spawn("containerd", ["--config", configFile], { stdio: ["ignore", out.fd, out.fd] });
  await out.close();
  const socket = join(dir, "containerd.sock");
  // Its log without the start-up noise (plugin loading, the config dump).
  const log = (): string => {
    try {
      return readFileSync(logFile, "utf8")
        .split("\n")
        .filter((l) => !/msg="(loading plugin|Start cri plugin with config)/.test(l))
        .join("\n");
    } catch {
      return "";
    }
  };
  const deadline = Date.now() + 30_000;
  while (!existsSync(socket)) {
    if (proc.exitCode !== null)
      throw new Error(`containerd exited (${proc.exitCode}):\n${log().slice(-4000)}`);
    if (Date.now() > deadline)
      throw new Error(`containerd did not open ${socket} in 30 s:\n${log().slice(-4000)}`);
    await sleep(50);
  }
  return { dir, socket, proc, logFile, log };
}

/** Pids of containerd shims serving our containerd (they outlive it if pods are left). */
function shimsOf(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync("/proc")) {
    const pid = Number(p);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmd.startsWith("/usr/bin/containerd-shim") && cmd.includes(dir)) pids.push(pid);
    } catch {}
  }
  return pids;
}

/** Mount points under `dir` (deepest first), left if containerd died with pods running. */
function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

interface CniCall {
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

interface Pod {
  id: string;
  uid: string;
  ip: string;
  netnsPath: string;
}

interface Allocation {
  containerId: string;
  ifname: string;
  ip: string;
  eniId: string;
  pod: { namespace: string; name: string; uid: string };
}

describe("containerd CRI runs eniway like kubelet would", () => {
  let sb: Sandbox | undefined;
  let node: SandboxNode;
  let dir: string;
  let sbDir: string;
  let ctrd: Containerd | undefined;
  let cri: CriClient | undefined;
  let callsDir: string;
  const sandboxes = new Set<string>();
  const netnsPaths = new Set<string>();
  const timings: { run?: number; stop?: number; remove?: number } = {};

  const allocations = async (): Promise<Allocation[]> =>
    ((await call(node.socket, "GET", "/v1/allocations")).body as { allocations: Allocation[] }).allocations;
  const ipPhase = async (ip: string): Promise<string | undefined> =>
    ((await call(node.socket, "GET", "/v1/ips")).body as { ips: { ip: string; phase: string }[] }).ips.find(
      (x) => x.ip === ip,
    )?.phase;
  const links = (): string[] =>
    (JSON.parse(sh("ip", "-n", node.netns, "-j", "link", "show")) as { ifname: string }[]).map(
      (l) => l.ifname,
    );

  beforeAll(async () => {
    requireTools();
    dir = await mkdtemp(join(tmpdir(), "eniway-ctrd-"));
    sbDir = await mkdtemp(join(tmpdir(), "eniway-ctrd-sbx-"));
    sb = await sandboxUp({
      dir: sbDir,
      nodes: 1,
      world: sandboxWorld(1, PREFIX),
      sets: [],
      log: silentLogger,
    });
    node = sb.file.nodes[0]!;
    // CNI: the sandbox's plugin and the reference loopback in one bin dir;
    // node A's conflist alone in the conf dir.
    const cniBin = join(dir, "cni-bin");
    const cniConf = join(dir, "cni-conf");
    callsDir = join(dir, "calls");
    await mkdir(cniBin);
    await mkdir(cniConf);
    // eniway is a recorder that execs the sandbox's plugin: each call's CNI_*
    // variables and stdin land in calls/, so the test sees what containerd sent.
    await mkdir(callsDir);
    await writeFile(
      join(cniBin, "eniway"),
      [
        "#!/bin/sh",
        `f=${JSON.stringify(callsDir)}/$(date +%s%N)-$$`,
        'cat > "$f.stdin"',
        'env | grep "^CNI_" > "$f.env"',
        `exec ${JSON.stringify(join(node.cniBinDir, "eniway"))} < "$f.stdin"`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    await symlink(join(CNI_PLUGINS, "loopback"), join(cniBin, "loopback"));
    await copyFile(node.cniConfFile, join(cniConf, "10-eniway.conflist"));
    const archive = await buildPauseArchive(join(dir, "image"));
    ctrd = await startContainerd(dir, cniBin, cniConf);
    cri = criClient(ctrd.socket);
    const v = await cri.version();
    expect(v.runtimeName).toBe("containerd");
    await shAsync([
      "ctr",
      "--address",
      ctrd.socket,
      "-n",
      "k8s.io",
      "images",
      "import",
      "--snapshotter",
      "native",
      archive,
    ]);
    expect(await shAsync(["ctr", "--address", ctrd.socket, "-n", "k8s.io", "images", "ls", "-q"])).toContain(
      IMAGE,
    );
  }, 120_000);

  afterAll(async () => {
    const errors: string[] = [];
    cri?.close();
    if (ctrd && ctrd.proc.exitCode === null && ctrd.proc.signalCode === null) {
      // Pods a failed test left: stop and remove them as kubelet would.
      const cleanup = criClient(ctrd.socket, 15_000);
      for (const id of sandboxes) {
        await cleanup.stopPodSandbox(id).catch((e: Error) => errors.push(e.message));
        await cleanup.removePodSandbox(id).catch((e: Error) => errors.push(e.message));
      }
      cleanup.close();
    } else if (ctrd) {
      errors.push(`containerd died (${ctrd.proc.exitCode ?? ctrd.proc.signalCode})`);
    }
    if (ctrd) {
      const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;
      if (alive(ctrd.proc)) {
        const exited = new Promise((r) => ctrd!.proc.once("exit", r));
        ctrd.proc.kill("SIGTERM");
        await Promise.race([exited, sleep(10_000)]);
        if (alive(ctrd.proc)) {
          ctrd.proc.kill("SIGKILL");
          await exited;
        }
      }
      // Anything that survived a failure: containers (runc), shims, mounts,
      // pod network namespaces. Each is a leak worth failing on.
      for (const root of existsSync(join(dir, "runc")) ? await readdir(join(dir, "runc")) : []) {
        const r = join(dir, "runc", root);
        for (const id of sh("runc", "--root", r, "list", "-q").split("\n").filter(Boolean)) {
          errors.push(`deleted leftover container ${id}`);
          try {
            sh("runc", "--root", r, "delete", "--force", id);
          } catch {}
        }
      }
      for (const pid of shimsOf(dir)) {
        errors.push(`killed leftover shim ${pid}`);
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
      }
      for (const m of mountsUnder(dir)) {
        try {
          sh("umount", "-l", m);
        } catch {}
      }
    }
    for (const ns of netnsPaths) {
      if (!existsSync(ns)) continue;
      errors.push(`deleted leftover netns ${ns}`);
      try {
        sh("ip", "netns", "del", basename(ns));
      } catch {}
    }
    // runc removes a container's cgroup but not the pod's parent (kubelet would).
    for (const ctl of await readdir(CGROUP_ROOT).catch(() => [] as string[])) {
      const top = join(CGROUP_ROOT, ctl, PREFIX);
      if (!existsSync(top)) continue;
      try {
        sh("find", top, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";");
      } catch (e) {
        errors.push(`cgroup ${top}: ${(e as Error).message}`);
      }
    }
    await sb?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (sbDir) await rm(sbDir, { recursive: true, force: true });
    expect(sh("ip", "netns", "list")).not.toContain(PREFIX);
    if (dir) expect(existsSync(dir)).toBe(false);
    expect(errors, ctrd?.log().slice(-4000)).toEqual([]);
  }, 90_000);

  async function runPod(name: string): Promise<Pod> {
    const uid = randomUUID();
    let id: string;
    try {
      id = await cri!.runPodSandbox({
        metadata: { name, namespace: "eniway-test", uid, attempt: 0 },
        hostname: name,
        logDirectory: join(dir, "logs", name),
        labels: { app: name },
        linux: {
          cgroupParent: `/${PREFIX}/pod${uid}`,
          securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
        },
      });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- containerd log ---\n${ctrd!.log().slice(-6000)}`);
    }
    sandboxes.add(id);
    const st = await cri!.podSandboxStatus(id);
    // Verbose status: containerd's "info" holds the sandbox's runtime spec,
    // whose network namespace path is what it passed as CNI_NETNS.
    const info = JSON.parse(st.info.info ?? "{}") as {
      runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
    };
    const netnsPath = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network")?.path ?? "";
    if (netnsPath) netnsPaths.add(netnsPath);
    expect(st.status.state).toBe("SANDBOX_READY");
    expect(st.status.metadata).toMatchObject({ name, namespace: "eniway-test", uid });
    return { id, uid, ip: st.status.network?.ip ?? "", netnsPath };
  }

  /** What containerd ran the plugin with for one sandbox, in order. */
  async function cniCalls(containerId: string): Promise<CniCall[]> {
    const names = (await readdir(callsDir)).filter((n) => n.endsWith(".env")).sort();
    const calls: CniCall[] = [];
    for (const n of names) {
      const env = Object.fromEntries(
        (await readFile(join(callsDir, n), "utf8"))
          .split("\n")
          .filter(Boolean)
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      ) as Record<string, string>;
      if (env.CNI_CONTAINERID !== containerId) continue;
      const stdin = JSON.parse(await readFile(join(callsDir, n.replace(/\.env$/, ".stdin")), "utf8"));
      calls.push({ env, stdin });
    }
    return calls;
  }

  const pods: Pod[] = [];

  it("RunPodSandbox: the pod's IP is the daemon's allocation for the sandbox, with the pod from CNI_ARGS", async () => {
    const t0 = performance.now();
    const p = await runPod("web-0");
    timings.run = performance.now() - t0;
    pods.push(p);
    expect(p.ip).toMatch(/^10\.0\.\d+\.\d+$/);
    const a = (await allocations()).find((x) => x.containerId === p.id);
    expect(a, JSON.stringify(await allocations())).toBeDefined();
    expect(a!.ifname).toBe("eth0");
    expect(a!.ip).toBe(p.ip);
    expect(a!.pod).toEqual({ namespace: "eniway-test", name: "web-0", uid: p.uid });
    // What containerd sent: one ADD, no VERSION, the pod in CNI_ARGS.
    const calls = await cniCalls(p.id);
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(["ADD"]);
    const args = new Map(calls[0]!.env.CNI_ARGS!.split(";").map((kv) => kv.split("=") as [string, string]));
    expect(args.get("K8S_POD_NAMESPACE")).toBe("eniway-test");
    expect(args.get("K8S_POD_NAME")).toBe("web-0");
    expect(args.get("K8S_POD_UID")).toBe(p.uid);
    expect(args.get("K8S_POD_INFRA_CONTAINER_ID")).toBe(p.id);
    expect(calls[0]!.env.CNI_NETNS).toBe(p.netnsPath);
    // The host end is wired: veth, /32 route; the pod's netns holds the address.
    const veth = hostVethName(p.id, "eth0");
    expect(links()).toContain(veth);
    expect(sh("ip", "-n", node.netns, "route", "show", `${p.ip}/32`)).toContain(`dev ${veth}`);
    expect(p.netnsPath).toMatch(/^\/var\/run\/netns\/[^/]+$/);
    expect(sh("ip", "-n", basename(p.netnsPath), "-4", "addr", "show", "eth0")).toContain(`${p.ip}/32`);
  });

  it("a second pod gets a different IP, and the two pods reach each other", async () => {
    const p = await runPod("web-1");
    pods.push(p);
    expect(p.ip).toMatch(/^10\.0\.\d+\.\d+$/);
    expect(p.ip).not.toBe(pods[0]!.ip);
    const mine = (await allocations()).filter((a) => pods.some((q) => q.id === a.containerId));
    expect(mine.map((a) => a.ip).sort()).toEqual(pods.map((q) => q.ip).sort());
    sh("ip", "netns", "exec", basename(pods[0]!.netnsPath), "ping", "-c1", "-W2", p.ip);
  });

  it("StopPodSandbox: DEL with the netns and prevResult releases the IP (cooling) and unwires the host", async () => {
    const p = pods[0]!;
    const t0 = performance.now();
    await cri!.stopPodSandbox(p.id);
    timings.stop = performance.now() - t0;
    const calls = await cniCalls(p.id);
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(["ADD", "DEL"]);
    const del = calls[1]!;
    expect(del.env.CNI_NETNS).toBe(p.netnsPath);
    expect((del.stdin.prevResult as { ips?: { address: string }[] } | undefined)?.ips?.[0]?.address).toBe(
      `${p.ip}/32`,
    );
    expect((await allocations()).map((a) => a.containerId)).not.toContain(p.id);
    expect(await ipPhase(p.ip)).toBe("cooling");
    expect(links()).not.toContain(hostVethName(p.id, "eth0"));
    expect(sh("ip", "-n", node.netns, "route", "show", `${p.ip}/32`)).toBe("");
    expect(sh("ip", "-n", node.netns, "rule")).not.toMatch(
      new RegExp(`\\b${p.ip.replaceAll(".", "\\.")}\\b`),
    );
    expect((await cri!.podSandboxStatus(p.id)).status.state).toBe("SANDBOX_NOTREADY");
    // The other pod is untouched.
    expect((await allocations()).map((a) => a.containerId)).toContain(pods[1]!.id);
  });

  it("RemovePodSandbox: the second DEL (empty CNI_NETNS, no prevResult) succeeds", async () => {
    const p = pods[0]!;
    const t0 = performance.now();
    await cri!.removePodSandbox(p.id);
    timings.remove = performance.now() - t0;
    sandboxes.delete(p.id);
    const calls = await cniCalls(p.id);
    expect(calls.map((c) => c.env.CNI_COMMAND)).toEqual(["ADD", "DEL", "DEL"]);
    expect(calls[2]!.env.CNI_NETNS ?? "").toBe("");
    expect(calls[2]!.stdin.prevResult).toBeUndefined();
    await expect(cri!.podSandboxStatus(p.id)).rejects.toMatchObject({ code: grpcStatus.NOT_FOUND });
    expect(existsSync(p.netnsPath)).toBe(false);
    expect(await ipPhase(p.ip)).toBe("cooling");
    expect((await allocations()).map((a) => a.containerId)).not.toContain(p.id);
  });

  it("the second pod stops and goes the same way", async () => {
    const p = pods[1]!;
    await cri!.stopPodSandbox(p.id);
    await cri!.removePodSandbox(p.id);
    sandboxes.delete(p.id);
    expect((await cniCalls(p.id)).map((c) => c.env.CNI_COMMAND)).toEqual(["ADD", "DEL", "DEL"]);
    const left = (await allocations()).filter((a) => pods.some((q) => q.id === a.containerId));
    expect(left).toEqual([]);
    expect(links().filter((l) => pods.some((q) => l === hostVethName(q.id, "eth0")))).toEqual([]);
    expect(existsSync(p.netnsPath)).toBe(false);
    console.log(
      `containerd CRI with eniway: RunPodSandbox ${timings.run?.toFixed(0)} ms, ` +
        `StopPodSandbox ${timings.stop?.toFixed(0)} ms, RemovePodSandbox ${timings.remove?.toFixed(0)} ms`,
    );
  });
});
