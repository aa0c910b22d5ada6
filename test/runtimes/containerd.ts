// A private containerd 1.6 with its CRI plugin, as the runtime tests run it:
// own root, state and socket in a temp dir, a hand-built pause image, and a
// teardown that stops what a failed test left and reports each leak.

import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { open, readdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { busyboxLayer } from "../../src/image/layers.js";
import { writeOciArchive } from "../../src/image/oci.js";
import { type CriClient, criClient, type PodSandboxStatus } from "./cri.js";

export const IMAGE = "eniway.test/pause:1";
export const CNI_PLUGINS = "/usr/lib/cni";
export const CGROUP_ROOT = "/sys/fs/cgroup";
const TOOLS = ["containerd", "containerd-shim-runc-v2", "ctr", "runc", "busybox", "tar"];

export const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] }).toString();
export const shAsync = (argv: string[], timeoutMs = 60_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${argv.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
export const which = (tool: string): string | null => {
  for (const d of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    if (d && existsSync(join(d, tool))) return join(d, tool);
  }
  return null;
};
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every tool this test runs, or an error that says what to install: never a skip. */
export function requireTools(): void {
  const missing = TOOLS.filter((t) => !which(t));
  for (const p of ["loopback"]) if (!existsSync(join(CNI_PLUGINS, p))) missing.push(join(CNI_PLUGINS, p));
  if (missing.length)
    throw new Error(
      `containerd test: missing ${missing.join(", ")}; run test/setup.sh ` +
        "(apt-get install --no-install-recommends containerd runc busybox-static containernetworking-plugins)",
    );
}

/**
 * An OCI image archive of a static busybox whose entrypoint sleeps forever,
 * the pause image of this test, stored by `ctr images import` as IMAGE
 * (the same builder as `eniway image build`).
 */
export async function buildPauseArchive(dir: string): Promise<string> {
  const layer = await busyboxLayer(dir);
  const archive = join(dir, "pause.oci.tar");
  const config = { Entrypoint: ["/bin/sleep", "2147483647"], WorkingDir: "/" };
  await writeOciArchive(archive, [{ name: IMAGE, layers: [layer], config }], dir);
  return archive;
}

export interface Containerd {
  dir: string;
  socket: string;
  proc: ChildProcess;
  logFile: string;
  log(): string;
}

/** containerd's config: everything under `dir`, CRI on, only what the test needs. */
export function containerdConfig(dir: string, cniBin: string, cniConf: string): string {
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

/** Builds the pause image and imports it into containerd's k8s.io namespace, then checks it is listed. */
export async function importPauseImage(ctrd: Containerd): Promise<void> {
  const archive = await buildPauseArchive(join(ctrd.dir, "image"));
  const ctr = ["ctr", "--address", ctrd.socket, "-n", "k8s.io"];
  await shAsync([...ctr, "images", "import", "--snapshotter", "native", archive]);
  const listed = await shAsync([...ctr, "images", "ls", "-q"]);
  if (!listed.includes(IMAGE)) throw new Error(`${IMAGE} is not listed after the import:\n${listed}`);
}

/** containerd in `netns` (a /var/run/netns name) when given: its CNI plugins then run in that namespace, as on a node. */
export async function startContainerd(
  dir: string,
  cniBin: string,
  cniConf: string,
  netns?: string,
): Promise<Containerd> {
  const configFile = join(dir, "config.toml");
  await writeFile(configFile, containerdConfig(dir, cniBin, cniConf));
  const logFile = join(dir, "containerd.log");
  const out = await open(logFile, "a");
  const argv = ["containerd", "--config", configFile];
  const [bin, ...args] = netns ? ["nsenter", `--net=/var/run/netns/${netns}`, "--", ...argv] : argv;
  const proc = spawn(bin!, args, { stdio: ["ignore", out.fd, out.fd] });
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
export function shimsOf(dir: string): number[] {
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
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Stops containerd after stopping and removing the pods a failed test left,
 * then removes what survived (containers, shims, mounts, pod namespaces, the
 * pods' cgroups under /PREFIX): each is returned as an error, a leak worth
 * failing on.
 */
export async function stopContainerd(opts: {
  ctrd: Containerd | undefined;
  cri: CriClient | undefined;
  sandboxes: Iterable<string>;
  netnsPaths: Iterable<string>;
  /** The cgroup parent the pods were given (/PREFIX/pod<uid>). */
  cgroupPrefix: string;
}): Promise<string[]> {
  const { ctrd, cri } = opts;
  // Its cgroups are removed below /sys/fs/cgroup/*/PREFIX: never the whole tree.
  if (!/^[A-Za-z0-9_-]+$/.test(opts.cgroupPrefix))
    throw new Error(`bad cgroup prefix ${JSON.stringify(opts.cgroupPrefix)}`);
  const errors: string[] = [];
  cri?.close();
  if (ctrd && ctrd.proc.exitCode === null && ctrd.proc.signalCode === null) {
    // Pods a failed test left: stop and remove them as kubelet would.
    const cleanup = criClient(ctrd.socket, 15_000);
    for (const id of opts.sandboxes) {
      await cleanup.stopPodSandbox(id).catch((e: Error) => errors.push(e.message));
      await cleanup.removePodSandbox(id).catch((e: Error) => errors.push(e.message));
    }
    cleanup.close();
  } else if (ctrd) {
    errors.push(`containerd died (${ctrd.proc.exitCode ?? ctrd.proc.signalCode})`);
  }
  if (ctrd) {
    const dir = ctrd.dir;
    const alive = (p: ChildProcess): boolean => p.exitCode === null && p.signalCode === null;
    if (alive(ctrd.proc)) {
      const exited = new Promise((r) => ctrd.proc.once("exit", r));
      ctrd.proc.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (alive(ctrd.proc)) {
        ctrd.proc.kill("SIGKILL");
        await exited;
      }
    }
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
  for (const ns of opts.netnsPaths) {
    if (!existsSync(ns)) continue;
    errors.push(`deleted leftover netns ${ns}`);
    try {
      sh("ip", "netns", "del", basename(ns));
    } catch {}
  }
  // runc removes a container's cgroup but not the pod's parent (kubelet would).
  for (const ctl of await readdir(CGROUP_ROOT).catch(() => [] as string[])) {
    const top = join(CGROUP_ROOT, ctl, opts.cgroupPrefix);
    if (!existsSync(top)) continue;
    try {
      sh("find", top, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";");
    } catch (e) {
      errors.push(`cgroup ${top}: ${(e as Error).message}`);
    }
  }
  return errors;
}

export interface RunningPod {
  id: string;
  uid: string;
  ip: string;
  /** What containerd passed as CNI_NETNS (from the sandbox's runtime spec). */
  netnsPath: string;
  status: PodSandboxStatus;
}

/** RunPodSandbox as kubelet sends it (namespace eniway-test, cgroup under /PREFIX), then its verbose status. */
export async function runPod(
  cri: CriClient,
  ctrd: Containerd,
  opts: { name: string; cgroupPrefix: string; annotations?: Record<string, string> },
): Promise<RunningPod> {
  const { name } = opts;
  const uid = randomUUID();
  let id: string;
  try {
    id = await cri.runPodSandbox({
      metadata: { name, namespace: "eniway-test", uid, attempt: 0 },
      hostname: name,
      logDirectory: join(ctrd.dir, "logs", name),
      labels: { app: name },
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      linux: {
        cgroupParent: `/${opts.cgroupPrefix}/pod${uid}`,
        securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" } },
      },
    });
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- containerd log ---\n${ctrd.log().slice(-6000)}`);
  }
  const st = await cri.podSandboxStatus(id);
  // Verbose status: containerd's "info" holds the sandbox's runtime spec,
  // whose network namespace path is what it passed as CNI_NETNS.
  const info = JSON.parse(st.info.info ?? "{}") as {
    runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
  };
  const netnsPath = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network")?.path ?? "";
  return { id, uid, ip: st.status.network?.ip ?? "", netnsPath, status: st.status };
}
