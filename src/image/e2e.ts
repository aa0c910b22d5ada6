// The images Kubernetes' upstream e2e suite (1.20) runs, under the names it
// asks for, made offline: agnhost as its Dockerfile (test/images/agnhost)
// makes it, with the same tools from Debian's packages instead of Alpine's
// (dig, curl, nc, ip and ss, iperf, bash), porter's certificate and key and
// /uploads; jessie-dnsutils (dig and getent, for the DNS tests); busybox and
// pause from the static busybox the sandbox's own test images use.

import { chmod, copyFile, mkdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { busyboxLayer, debianLayer } from "./layers.js";
import { DEFAULT_PATH, type ImageSpec, tarLayer } from "./oci.js";

export const E2E_IMAGES = {
  agnhost: "k8s.gcr.io/e2e-test-images/agnhost:2.21",
  jessieDnsutils: "gcr.io/kubernetes-e2e-test-images/jessie-dnsutils:1.0",
  busybox: "docker.io/library/busybox:1.29",
  pause: "k8s.gcr.io/pause:3.2",
} as const;

/**
 * What agnhost's Dockerfile installs (bind-tools, curl, netcat-openbsd,
 * iproute2, iperf, bash), as Debian names them, and what the DNS tests'
 * probes run (sh, seq, awk, tr, hostname, getent).
 */
export const TOOL_PACKAGES = [
  "bash",
  "bind9-dnsutils",
  "coreutils",
  "curl",
  "dash",
  "findutils",
  "grep",
  "hostname",
  "iperf",
  "iproute2",
  "libc-bin",
  "mawk",
  "netcat-openbsd",
  "procps",
  "sed",
];

/** Links the packages' maintainer scripts would make (update-alternatives), which an unpacked root never ran. */
const TOOL_LINKS: Record<string, string> = {
  "usr/bin/awk": "mawk",
  "bin/nc": "nc.openbsd",
  "bin/netcat": "nc.openbsd",
};

async function toolLinks(rootfs: string): Promise<void> {
  for (const [path, target] of Object.entries(TOOL_LINKS))
    await symlink(target, join(rootfs, path)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EEXIST") throw e;
    });
}

/** agnhost's own layer: /agnhost and /agnhost-2, porter's certificate and key, /uploads, iperf in /usr/local/bin. */
async function agnhostLayer(e2eDir: string, work: string): Promise<string> {
  const root = join(work, "agnhost");
  await mkdir(join(root, "uploads"), { recursive: true });
  await mkdir(join(root, "usr", "local", "bin"), { recursive: true });
  await copyFile(join(e2eDir, "agnhost"), join(root, "agnhost"));
  await chmod(join(root, "agnhost"), 0o755);
  await symlink("agnhost", join(root, "agnhost-2"));
  for (const f of ["localhost.crt", "localhost.key"])
    await copyFile(join(e2eDir, "agnhost-image", f), join(root, f));
  await symlink("/usr/bin/iperf", join(root, "usr", "local", "bin", "iperf"));
  const file = join(work, "agnhost.tar");
  await tarLayer(root, file);
  return file;
}

/**
 * The upstream suite's images. `e2eDir` holds what test/kubernetes.sh built
 * from the Kubernetes source (agnhost, and agnhost-image/ with porter's files).
 */
export async function e2eImages(o: { e2eDir: string; cache: string; work: string }): Promise<ImageSpec[]> {
  const tools = await debianLayer({
    name: "e2e-tools",
    packages: TOOL_PACKAGES,
    key: { packages: TOOL_PACKAGES, links: TOOL_LINKS },
    cache: o.cache,
    work: o.work,
    finish: toolLinks,
  });
  const agnhost = await agnhostLayer(o.e2eDir, o.work);
  const busybox = await busyboxLayer(o.work);
  const env = [DEFAULT_PATH];
  return [
    {
      name: E2E_IMAGES.agnhost,
      layers: [tools, agnhost],
      config: { Env: env, Entrypoint: ["/agnhost"], Cmd: ["pause"] },
    },
    { name: E2E_IMAGES.jessieDnsutils, layers: [tools], config: { Env: env, Cmd: ["/bin/sh"] } },
    { name: E2E_IMAGES.busybox, layers: [busybox], config: { Env: env, Cmd: ["sh"] } },
    {
      name: E2E_IMAGES.pause,
      layers: [busybox],
      config: { Env: env, Entrypoint: ["/bin/sleep", "2147483647"] },
    },
  ];
}
