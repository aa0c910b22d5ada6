// OCI image archives without a registry or a container engine: a folder
// becomes a reproducible layer tar, layers and a config become an image, and
// images become one OCI layout archive that `ctr images import` (containerd)
// and `podman load` read. Each image is named by the containerd annotation.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { copyFile, link, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exec } from "../../lib/exec.js";

/** The part of an OCI image config a runtime reads (`config` in the image config JSON). */
export interface ImageConfig {
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

export interface ImageSpec {
  /** A full reference, e.g. `eniway:0.1.0` or `localhost/busybox:local`. */
  name: string;
  /** Layer tars, lowest first (see `tarLayer`). */
  layers: string[];
  config: ImageConfig;
}

export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The full reference a runtime looks an image up by, as Docker names it:
 * `eniway:0.1.0` is `docker.io/library/eniway:0.1.0`; a first component with
 * a dot or a port, or `localhost`, is a registry and stays.
 */
export function fullReference(name: string): string {
  const first = name.split("/")[0]!;
  const hasRegistry =
    name.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  if (hasRegistry) return name;
  return name.includes("/") ? `docker.io/${name}` : `docker.io/library/${name}`;
}

export const ociArch = (): string => (process.arch === "x64" ? "amd64" : process.arch);

/** A reproducible tar of a folder's contents: sorted, time 0, owned by root. */
export async function tarLayer(rootfs: string, out: string): Promise<void> {
  await exec([
    "tar",
    "--sort=name",
    "--mtime=@0",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--xattrs",
    "-C",
    rootfs,
    "-cf",
    out,
    ".",
  ]);
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Writes `images` as one OCI layout archive at `out`; `work` is a scratch folder it removes. */
export async function writeOciArchive(out: string, images: ImageSpec[], work: string): Promise<void> {
  const layout = join(work, "oci");
  const blobs = join(layout, "blobs", "sha256");
  await rm(layout, { recursive: true, force: true });
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = createHash("sha256").update(data).digest("hex");
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layerBlobs = new Map<string, { digest: string; size: number }>();
  const putLayer = async (file: string): Promise<{ digest: string; size: number }> => {
    const known = layerBlobs.get(file);
    if (known) return known;
    const hex = await sha256File(file);
    const target = join(blobs, hex);
    // A hard link saves copying hundreds of megabytes; another file system needs the copy.
    await link(file, target).catch(() => copyFile(file, target));
    const b = { digest: `sha256:${hex}`, size: (await stat(file)).size };
    layerBlobs.set(file, b);
    return b;
  };
  const arch = ociArch();
  const manifests = [];
  for (const image of images) {
    const layers = [];
    for (const l of image.layers) layers.push(await putLayer(l));
    const config = await put(
      Buffer.from(
        JSON.stringify({
          architecture: arch,
          os: "linux",
          created: "1970-01-01T00:00:00Z",
          config: image.config,
          rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
        }),
      ),
    );
    const manifest = await put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
          layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...l })),
        }),
      ),
    );
    manifests.push({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...manifest,
      platform: { architecture: arch, os: "linux" },
      // Both the full reference: containerd reads the first, podman and skopeo the second (a
      // tag alone would be ambiguous: the test images share theirs).
      annotations: {
        "io.containerd.image.name": fullReference(image.name),
        "org.opencontainers.image.ref.name": fullReference(image.name),
      },
    });
  }
  await writeFile(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(layout, "index.json"),
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }),
  );
  await tarLayer(layout, out);
  await rm(layout, { recursive: true, force: true });
}
