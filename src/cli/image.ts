// `eniway image build`: the Dockerfile's image as an OCI archive, without a registry.

import { packageRoot } from "../../lib/process.js";
import { buildImage } from "../image/build.js";

/** Builds it and says how to load it. */
export async function imageBuild(f: { out: string; name?: string }): Promise<number> {
  const names = await buildImage({ root: packageRoot(), out: f.out, ...(f.name ? { name: f.name } : {}) });
  process.stdout.write(`${f.out}: ${names.join(", ")} (load it with ctr -n k8s.io images import ${f.out})\n`);
  return 0;
}
