// The image: the Dockerfile's NODE_VERSION and PACKAGES drive `eniway image
// build`, the archive holds what the chart runs, and podman (a real
// runtime) loads it and runs the daemon's CLI and the tools it calls.

import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DAEMON_NODE_FLAGS, packageRoot } from "../../lib/process.js";
import {
  BUSYBOX,
  buildImage,
  DEFAULT_CACHE,
  dockerfileArgs,
  IMAGE_REF,
  PAUSE,
} from "../../src/image/build.js";
import { chooseDeps, parseDepends } from "../../src/image/debian.js";
import { fullReference } from "../../src/image/oci.js";
import { privatePodman } from "../runtimes/podman-env.js";

const ROOT = packageRoot();
const sh = (...argv: string[]): string =>
  execFileSync(argv[0]!, argv.slice(1), { maxBuffer: 64 << 20 }).toString();

describe("apt-cache depends, read as apt would choose", () => {
  const out = [
    "iproute2",
    " |Depends: debconf",
    "  Depends: <debconf-2.0>",
    "    cdebconf",
    "    debconf",
    "  Depends: libbpf1",
    "  PreDepends: libc6",
    "util-linux",
    "  PreDepends: libsystemd0",
    "    libelogind0",
    "  Depends: <awk>",
    "    mawk",
    "    gawk",
    "  Depends: libc6:i386",
    "",
  ].join("\n");

  it("takes the first alternative of each group and a virtual package's first provider", () => {
    const deps = parseDepends(out);
    expect([...deps.keys()]).toEqual(["iproute2", "util-linux"]);
    expect(chooseDeps(deps.get("iproute2")!)).toEqual(["debconf", "libbpf1", "libc6"]);
    // A real package listed with providers is itself; another architecture is never picked.
    expect(chooseDeps(deps.get("util-linux")!)).toEqual(["libsystemd0", "mawk"]);
  });
});

describe("image names and the Dockerfile", () => {
  it("reads NODE_VERSION, PACKAGES, ENTRYPOINT and CMD from the Dockerfile, and refuses a broken one", async () => {
    const args = dockerfileArgs(await readFile(join(ROOT, "Dockerfile"), "utf8"));
    expect(args.nodeVersion).toMatch(/^22\.\d+\.\d+$/);
    expect(args.packages).toEqual(expect.arrayContaining(["iproute2", "iptables", "util-linux"]));
    // The daemon's Node flags, as the chart and the sandbox give them.
    expect(args.entrypoint).toEqual(["node", ...DAEMON_NODE_FLAGS, "/opt/eniway/dist/src/cli/main.js"]);
    expect(args.cmd).toEqual(["daemon", "--config", "/etc/eniway/config.yaml"]);
    expect(() => dockerfileArgs('ARG NODE_VERSION=22.1.0\nARG PACKAGES="a"\nENTRYPOINT node x\n')).toThrow(
      /no ENTRYPOINT \["…"\] in exec form/,
    );
    expect(() => dockerfileArgs("FROM x\n")).toThrow(/no ARG NODE_VERSION/);
    expect(() => dockerfileArgs('ARG NODE_VERSION=22\nARG PACKAGES="a"\n')).toThrow(/not x\.y\.z/);
  });

  it("names images as a runtime looks them up", () => {
    expect(fullReference("eniway:0.1.0")).toBe("docker.io/library/eniway:0.1.0");
    expect(fullReference("acme/eniway:1")).toBe("docker.io/acme/eniway:1");
    expect(fullReference(BUSYBOX)).toBe(BUSYBOX);
    expect(fullReference("registry.example.com:5000/eniway:1")).toBe("registry.example.com:5000/eniway:1");
    expect(IMAGE_REF.test("eniway:0.1.0")).toBe(true);
    for (const bad of ["eniway", "Eniway:1", "eniway:1;rm", "eniway:-x", "../x:1"])
      expect(IMAGE_REF.test(bad)).toBe(false);
  });
});

describe("eniway image build", () => {
  let dir: string;
  let archive: string;
  let names: string[];
  const list = new Map<string, string[]>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-image-"));
    archive = join(dir, "images.tar");
    names = await buildImage({ root: ROOT, out: archive, withTestImages: true });
    sh("tar", "-xf", archive, "-C", dir);
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    for (const m of index.manifests) {
      const manifest = JSON.parse(await readFile(join(dir, "blobs/sha256", m.digest.slice(7)), "utf8")) as {
        layers: { digest: string }[];
      };
      const files = manifest.layers.flatMap((l) =>
        sh("tar", "-tvf", join(dir, "blobs/sha256", l.digest.slice(7))).split("\n"),
      );
      list.set(m.annotations["io.containerd.image.name"]!, files);
    }
  }, 300_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("holds the eniway image with the layout the chart runs, and the test images", () => {
    expect(names).toEqual(["eniway:0.1.0", BUSYBOX, PAUSE]);
    const files = list.get("docker.io/library/eniway:0.1.0")!;
    const has = (path: string): boolean => files.some((l) => l.includes(` ./${path}`));
    for (const p of [
      "usr/local/bin/node",
      "opt/eniway/dist/src/cli/main.js",
      "opt/eniway/dist/bin/eniway-cni",
      "opt/eniway/dist/bin/eniway-netlink",
      "opt/eniway/src/dashboard/assets/index.html",
      "opt/eniway/node_modules/@kubernetes/client-node/package.json",
      "opt/eniway/node_modules/uplot/dist/uPlot.iife.min.js",
      "sbin/ip",
      "usr/bin/nsenter",
      "usr/sbin/iptables -> iptables-nft",
    ])
      expect(has(p), p).toBe(true);
    // No tests, no development packages.
    expect(has("opt/eniway/dist/test/")).toBe(false);
    expect(has("opt/eniway/node_modules/vitest/")).toBe(false);
    expect(has("opt/eniway/node_modules/typescript/")).toBe(false);
    // The base layer is cached per machine, with the package list it was made from.
    expect(sh("ls", DEFAULT_CACHE)).toMatch(/base-[0-9a-f]{16}\.tar/);
  });

  it("runs in podman: the CLI, iproute2, iptables (nft) and nsenter, as root without a network", async () => {
    const work = join(dir, "podman");
    await mkdir(work);
    const p = await privatePodman(work);
    const podman = (...args: string[]): string =>
      execFileSync("podman", [...p.globalArgs, ...args], { env: p.env, maxBuffer: 64 << 20 }).toString();
    const image = fullReference("eniway:0.1.0");
    // The archive holds three images; podman takes one by its reference.
    podman("pull", "-q", `oci-archive:${archive}:${image}`);
    const run = (entry: string, ...args: string[]): string =>
      podman("run", "--rm", "--network", "none", "--entrypoint", entry, image, ...args);
    expect(run("node", "/opt/eniway/dist/src/cli/main.js", "help")).toMatch(/eniway daemon --config FILE/);
    expect(run("ip", "-V")).toMatch(/iproute2/);
    expect(run("iptables", "-V")).toMatch(/nf_tables/);
    expect(run("nsenter", "--version")).toMatch(/util-linux/);
    // The default command is the daemon with the chart's config path.
    const cfg = JSON.parse(podman("image", "inspect", image)) as {
      Config: { Entrypoint: string[]; Cmd: string[] };
    }[];
    expect([...cfg[0]!.Config.Entrypoint, ...cfg[0]!.Config.Cmd]).toEqual([
      "node",
      ...DAEMON_NODE_FLAGS,
      "/opt/eniway/dist/src/cli/main.js",
      "daemon",
      "--config",
      "/etc/eniway/config.yaml",
    ]);
    podman("rmi", "-af");
  }, 120_000);
});
