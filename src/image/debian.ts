// A root file system from Debian packages, without a container engine: the
// dependency closure of a package list (first alternative of each "a | b",
// as apt picks it), downloaded with apt-get and unpacked with dpkg-deb.
// Maintainer scripts never run, so what they would do is done here: the
// iptables alternatives point at the nft backend, Debian 12's default.

import { mkdir, readdir, symlink } from "node:fs/promises";
import { join } from "node:path";
import { exec } from "../../lib/exec.js";

/** Debian package names (policy §5.6.1); anything else never reaches apt. */
export const DEB_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

/**
 * Needed only by maintainer scripts, which an unpacked image never runs
 * (iproute2 depends on debconf to ask one question at install time).
 */
const SCRIPT_ONLY = new Set(["debconf", "cdebconf", "dpkg", "install-info", "perl-base", "tar"]);

interface Dep {
  name: string;
  virtual: boolean;
  providers: string[];
  /** Another alternative of the same "a | b" group follows. */
  or: boolean;
}

/** Parses `apt-cache depends` output into each package's dependency lines. */
export function parseDepends(out: string): Map<string, Dep[]> {
  const deps = new Map<string, Dep[]>();
  let current: Dep[] | null = null;
  let last: Dep | null = null;
  for (const line of out.split("\n")) {
    if (line === "") continue;
    if (!line.startsWith(" ")) {
      current = [];
      deps.set(line.trim(), current);
      last = null;
      continue;
    }
    const m = /^ (\||\s)(?:Pre)?Depends: (<)?([^>\s]+)>?$/.exec(line);
    if (m && current) {
      last = { name: m[3]!.replace(/:any$/, ""), virtual: m[2] === "<", providers: [], or: m[1] === "|" };
      current.push(last);
    } else if (/^ {4}\S/.test(line) && last) last.providers.push(line.trim());
  }
  return deps;
}

/** The first alternative of each group that apt could install (a real package, or a virtual one's first provider). */
export function chooseDeps(deps: Dep[]): string[] {
  const chosen: string[] = [];
  let group: Dep[] = [];
  for (const d of deps) {
    group.push(d);
    if (d.or) continue;
    const pick = group
      .map((g) => (g.virtual ? g.providers[0] : g.name))
      .find((n): n is string => n !== undefined && !n.includes(":"));
    if (pick) chosen.push(pick);
    group = [];
  }
  return chosen;
}

/** The packages and every package they need, minus those only maintainer scripts use; sorted. */
export async function closure(packages: string[]): Promise<string[]> {
  for (const p of packages)
    if (!DEB_NAME.test(p)) throw new Error(`not a Debian package name: ${JSON.stringify(p)}`);
  const seen = new Set<string>(packages);
  let todo = [...packages];
  while (todo.length > 0) {
    const out = await exec([
      "apt-cache",
      "depends",
      "--no-recommends",
      "--no-suggests",
      "--no-conflicts",
      "--no-breaks",
      "--no-replaces",
      "--no-enhances",
      ...todo,
    ]);
    const next: string[] = [];
    for (const [pkg, deps] of parseDepends(out)) {
      if (!seen.has(pkg)) continue;
      for (const d of chooseDeps(deps)) {
        if (seen.has(d) || SCRIPT_ONLY.has(d) || !DEB_NAME.test(d)) continue;
        seen.add(d);
        next.push(d);
      }
    }
    todo = next;
  }
  return [...seen].sort();
}

/** Downloads the packages into `dir` (apt-get download) and unpacks every one into `rootfs`. */
export async function unpack(packages: string[], dir: string, rootfs: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  await mkdir(rootfs, { recursive: true });
  await exec(["apt-get", "download", "-q", ...packages], undefined, dir).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\n(run apt-get update, then try again)`);
  });
  const debs = (await readdir(dir)).filter((f) => f.endsWith(".deb")).sort();
  for (const deb of debs) await exec(["dpkg-deb", "-x", join(dir, deb), rootfs]);
  return debs;
}

/** What update-alternatives would link for iptables and ip6tables: the nft backend. */
export async function iptablesAlternatives(rootfs: string): Promise<void> {
  const sbin = join(rootfs, "usr", "sbin");
  for (const fam of ["iptables", "ip6tables"])
    for (const suffix of ["", "-save", "-restore"])
      await symlink(`${fam}-nft${suffix}`, join(sbin, `${fam}${suffix}`)).catch(
        (e: NodeJS.ErrnoException) => {
          if (e.code !== "EEXIST") throw e;
        },
      );
}
