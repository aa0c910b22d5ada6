// Image layers the builds share: an image root's skeleton, a cached layer of
// Debian packages, and a static busybox with its applets.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exec } from "../../lib/exec.js";
import { findTool } from "../../lib/process.js";
import { closure, unpack } from "./debian.js";
import { tarLayer } from "./oci.js";

/** The folders and files every image root has; `/var/run` is `/run`, as on Debian. */
export async function skeleton(rootfs: string): Promise<void> {
  for (const d of ["dev", "proc", "sys", "etc", "run", "root", "var", "usr/local/bin", "usr/sbin", "usr/bin"])
    await mkdir(join(rootfs, d), { recursive: true });
  await mkdir(join(rootfs, "tmp"), { recursive: true });
  await chmod(join(rootfs, "tmp"), 0o1777);
  if (!existsSync(join(rootfs, "var", "run"))) await symlink("../run", join(rootfs, "var", "run"));
  await writeFile(
    join(rootfs, "etc", "passwd"),
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
  );
  await writeFile(join(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
}

/**
 * A layer of Debian packages (their dependency closure, unpacked), what
 * `finish` adds, and the root skeleton, cached per machine as NAME-KEY.tar
 * where KEY is a hash of `key` (what the layer is made of).
 */
export async function debianLayer(o: {
  name: string;
  packages: string[];
  key: unknown;
  cache: string;
  work: string;
  finish?(rootfs: string): Promise<void>;
}): Promise<string> {
  const key = createHash("sha256").update(JSON.stringify(o.key)).digest("hex").slice(0, 16);
  const file = join(o.cache, `${o.name}-${key}.tar`);
  if (existsSync(file)) return file;
  for (const tool of ["apt-cache", "apt-get", "dpkg-deb", "npm", "tar"])
    if (!findTool(tool))
      throw new Error(`image build: ${tool} is not installed (a Debian or Ubuntu machine has it)`);
  const rootfs = join(o.work, o.name);
  const packages = await closure(o.packages);
  await unpack(packages, join(o.work, `${o.name}-debs`), rootfs);
  await skeleton(rootfs);
  await o.finish?.(rootfs);
  await mkdir(o.cache, { recursive: true });
  // Two builds at once (parallel test files) each write their own file; the renames are atomic.
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await tarLayer(rootfs, tmp);
  await rename(tmp, file);
  await writeFile(join(o.cache, `${o.name}-${key}.packages`), `${packages.join("\n")}\n`);
  return file;
}

/** A static busybox with its applets: the test pods' image (has sh and sleep) and the pause image. */
export async function busyboxLayer(work: string): Promise<string> {
  const busybox = findTool("busybox");
  if (!busybox) throw new Error("busybox is not installed (apt-get install -y busybox-static)");
  const rootfs = join(work, "busybox");
  await skeleton(rootfs);
  await mkdir(join(rootfs, "bin"), { recursive: true });
  await copyFile(busybox, join(rootfs, "bin", "busybox"));
  await chmod(join(rootfs, "bin", "busybox"), 0o755);
  const applets = (await exec([busybox, "--list"])).split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a));
  for (const a of applets)
    if (a !== "busybox") await symlink("busybox", join(rootfs, "bin", a)).catch(() => {});
  const file = join(work, "busybox.tar");
  await tarLayer(rootfs, file);
  return file;
}
