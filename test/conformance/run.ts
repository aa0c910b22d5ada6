// `npm run conformance [-- --focus REGEX] [--skip REGEX]`: Kubernetes' own
// e2e suite against eniway. A 2-node `sandbox up --cluster --test-images`
// (eniway installed with helm, cluster DNS, the suite's images), then
// e2e.test with the focus (default: every sig-network conformance test,
// every NetworkPolicy test and the Networking Granular Checks), then
// CONFORMANCE.md. Tests that cannot run here (SCTP without the kernel's
// support) are left out with the reason.

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exec } from "../../lib/exec.js";
import { createLogger } from "../../lib/log.js";
import { packageRoot } from "../../lib/process.js";
import { sandboxClusterUp } from "../../src/sandbox/clusterup.js";
import { kubeBinDir, kubeE2eDir } from "../../src/sandbox/controlplane.js";
import { sandboxWorld } from "../../src/sandbox/sandbox.js";
import { environment } from "../bench/report.js";
import { requireClusterTestTools } from "../cluster/helpers.js";
import { DEFAULT_FOCUS, type E2eRun, runE2e } from "./e2e.js";
import { renderReport } from "./report.js";

/** What this machine cannot run, as a skip pattern and its reason. */
export function unsupported(): { pattern: string; reason: string }[] {
  const out: { pattern: string; reason: string }[] = [];
  // The sctp module makes /proc/net/sctp; without it no SCTP socket opens (and nothing here loads it).
  if (!existsSync("/proc/net/sctp"))
    out.push({
      pattern: "SCTP",
      reason: "this kernel has no SCTP (no /proc/net/sctp): no SCTP socket can open",
    });
  return out;
}

/** A 2-node cluster sandbox with the suite's images; the suite runs against it; the sandbox is removed after. */
export async function conformance(o: { focus: string; skip: string; reportDir: string }): Promise<E2eRun> {
  requireClusterTestTools();
  const e2eDir = kubeE2eDir();
  const dir = await mkdtemp(join(tmpdir(), "eniway-conformance-"));
  const sb = await sandboxClusterUp({
    dir: join(dir, "sandbox"),
    nodes: 2,
    world: sandboxWorld(2, "ewcf"),
    sets: [],
    testImages: true,
    log: createLogger({ level: "warn", base: { component: "conformance" } }),
  });
  try {
    return await runE2e({
      e2eDir,
      kubectl: join(kubeBinDir(), "kubectl"),
      kubeconfig: sb.file.kubernetes!.kubeconfig,
      nodes: 2,
      focus: o.focus,
      skip: o.skip,
      reportDir: o.reportDir,
    });
  } finally {
    await sb.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { focus: { type: "string" }, skip: { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help) {
    process.stdout.write("usage: npm run conformance [-- --focus REGEX] [--skip REGEX]\n");
    return 0;
  }
  const missing = unsupported();
  const focus = values.focus ?? DEFAULT_FOCUS;
  const skip = [values.skip, ...missing.map((m) => m.pattern)].filter(Boolean).join("|");
  const root = packageRoot();
  const reportDir = join(root, "dist", "conformance");
  await rm(reportDir, { recursive: true, force: true });
  await mkdir(reportDir, { recursive: true });
  const started = new Date();
  // Before the run: the commit the cluster is built from, not one made while it ran.
  const env = await environment();
  const run = await conformance({ focus, skip, reportDir });
  const kube = await exec([join(kubeBinDir(), "kube-apiserver"), "--version"]).catch(() => "unknown");
  const notRun = run.excluded.map((name) => ({
    name,
    reason:
      missing.find((m) => new RegExp(m.pattern).test(name))?.reason ??
      `left out by --skip ${values.skip ?? ""}`.trim(),
  }));
  const md = renderReport({
    date: started.toISOString(),
    command: `npm run conformance${values.focus ? ` -- --focus '${values.focus}'` : ""}${values.skip ? ` --skip '${values.skip}'` : ""}`,
    focus,
    skip,
    machine: env.machine,
    versions: {
      ...env.versions,
      Kubernetes: `${kube.trim()} (Debian's source package, built by test/kubernetes.sh)`,
      "e2e suite": "e2e.test and agnhost from the same source (test/kubernetes.sh)",
    },
    results: run.results,
    notRun,
    seconds: run.seconds,
  });
  await writeFile(join(root, "CONFORMANCE.md"), md);
  const failed = run.results.filter((t) => t.outcome === "failed");
  for (const t of run.results)
    process.stdout.write(`${t.outcome.padEnd(7)} ${t.seconds.toFixed(1).padStart(7)} s  ${t.name}\n`);
  process.stdout.write(
    `\n${run.results.length} run: ${run.results.length - failed.length} passed or skipped, ${failed.length} failed; ${notRun.length} not run. Wrote ${join(root, "CONFORMANCE.md")} (the suite's log: ${join(reportDir, "e2e.log")})\n`,
  );
  return 0;
}

if (process.argv[1]?.endsWith("conformance/run.js"))
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`conformance: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
