// A private podman for a test: its own storage (vfs), run root, temp dir,
// events log and containers.conf under `work`, so the machine's podman
// images and containers are never touched. nofile matches this machine's
// hard limit: root here lacks CAP_SYS_RESOURCE, so runc cannot raise it.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface PodmanEnv {
  env: Record<string, string>;
  /** Global flags for every podman command. */
  globalArgs: string[];
}

export async function privatePodman(
  work: string,
  network?: { pluginDirs: string[]; configDir: string },
): Promise<PodmanEnv> {
  const tmp = join(work, "tmp");
  await writeFile(
    join(work, "containers.conf"),
    [
      "[containers]",
      'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]',
      "[network]",
      'network_backend = "cni"',
      ...(network
        ? [
            `cni_plugin_dirs = ${JSON.stringify(network.pluginDirs)}`,
            `network_config_dir = ${JSON.stringify(network.configDir)}`,
          ]
        : []),
      "[engine]",
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${JSON.stringify(join(tmp, "events.log"))}`,
      `tmp_dir = ${JSON.stringify(tmp)}`,
      "",
    ].join("\n"),
  );
  const root = join(work, "root");
  const runroot = join(work, "runroot");
  await writeFile(
    join(work, "storage.conf"),
    `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(root)}\nrunroot = ${JSON.stringify(runroot)}\n`,
  );
  return {
    env: {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: work,
      CONTAINERS_CONF: join(work, "containers.conf"),
      CONTAINERS_STORAGE_CONF: join(work, "storage.conf"),
    },
    globalArgs: ["--root", root, "--runroot", runroot, "--tmpdir", tmp, "--storage-driver", "vfs"],
  };
}
