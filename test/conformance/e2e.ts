// Running Kubernetes' upstream e2e suite (e2e.test, built from the same
// source as the cluster's binaries by test/kubernetes.sh) against a sandbox
// cluster, and reading what it reports: the JUnit file for each test's
// result and time, its output for the reasons of tests that skipped
// themselves.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/** What `npm run conformance` runs by default: sig-network's conformance tests, NetworkPolicy, the granular checks. */
export const DEFAULT_FOCUS =
  "\\[sig-network\\].*\\[Conformance\\]|\\[sig-network\\].*\\[Feature:NetworkPolicy\\]|\\[sig-network\\] Networking Granular Checks";

export type Outcome = "passed" | "failed" | "skipped";

export interface TestResult {
  name: string;
  outcome: Outcome;
  seconds: number;
  /** The failure's first lines, or why the test skipped itself. */
  message: string;
}

const ENTITIES: Record<string, string> = { quot: '"', amp: "&", lt: "<", gt: ">", apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(Number(e.slice(1)));
    return ENTITIES[e] ?? m;
  });
}

/**
 * The suite's JUnit report: every spec it knows, each passed, failed or
 * skipped. A spec the focus left out is skipped in 0 seconds; `ran` says
 * which ones started (a skip from inside the test takes some time).
 */
export function parseJunit(xml: string): (TestResult & { started: boolean })[] {
  const out: (TestResult & { started: boolean })[] = [];
  const re = /<testcase name="([^"]*)" classname="[^"]*" time="([^"]*)"(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    const seconds = Number(m[2]) || 0;
    const failure = /<failure[^>]*>([\s\S]*?)<\/failure>/.exec(body);
    const skipped = /<skipped/.test(body);
    const outcome: Outcome = failure ? "failed" : skipped ? "skipped" : "passed";
    const message = failure
      ? unescapeXml(failure[1] ?? "")
          .split("\n")
          .filter((l) => l.trim() !== "" && !/^k8s\.io\/kubernetes\//.test(l.trim()))
          .slice(0, 6)
          .join("\n")
      : "";
    out.push({ name: unescapeXml(m[1] ?? ""), outcome, seconds, message, started: !skipped || seconds > 0 });
  }
  return out;
}

/**
 * Why specs skipped themselves, from the suite's verbose output: each
 * "[SKIPPING]" block names the spec and ends with the reason.
 */
export function skipReasons(log: string): Map<string, string> {
  const reasons = new Map<string, string>();
  const blocks = log.split(/^-{30,}$/m);
  for (const b of blocks) {
    const at = b.search(/^S \[SKIPPING\]/m);
    if (at < 0) continue;
    const lines = b
      .slice(at)
      .split("\n")
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => l !== "" && !/^k8s\.io\//.test(l));
    // The spec's name is its describe lines and its It line (ending "[It]"); the reason follows.
    const it = lines.findIndex((l) => l.endsWith("[It]"));
    const reason = lines.slice(it + 1).find((l) => !l.startsWith("/") && !l.endsWith(".go"));
    if (it < 0 || !reason) continue;
    const name = lines
      .slice(0, it + 1)
      .join(" ")
      .replace(/\s*\[It\]$/, "");
    reasons.set(name.replace(/\s+/g, " "), reason);
  }
  return reasons;
}

/**
 * The suite's "Networking" tests (test/e2e/network/networking.go) first
 * fetch http://google.com from the runner itself, "not really a test of
 * kubernetes in any way", the suite says: the sandbox has no internet by
 * design. The runner's HTTP goes through this stand-in (HTTP_PROXY), which
 * answers 200; every address of the cluster and the VPC bypasses it
 * (NO_PROXY), so nothing the tests check passes through it.
 */
async function internetStandIn(): Promise<{ env: Record<string, string>; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" }).end("the sandbox's stand-in for the internet\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    env: {
      HTTP_PROXY: `http://127.0.0.1:${port}`,
      NO_PROXY: "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,localhost,.cluster.local",
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface E2eRun {
  results: TestResult[];
  /** Every spec the focus selected that the skip regex left out. */
  excluded: string[];
  exitCode: number | null;
  seconds: number;
  log: string;
}

/** Runs e2e.test against the cluster of `kubeconfig`; the report and the output go to `reportDir`. */
export async function runE2e(o: {
  e2eDir: string;
  kubectl: string;
  kubeconfig: string;
  nodes: number;
  focus: string;
  skip: string;
  reportDir: string;
  timeoutMs?: number;
}): Promise<E2eRun> {
  const binary = join(o.e2eDir, "e2e.test");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run bash test/kubernetes.sh`);
  const args = [
    "--provider=skeleton",
    `--kubeconfig=${o.kubeconfig}`,
    `--kubectl-path=${o.kubectl}`,
    `--num-nodes=${o.nodes}`,
    `--ginkgo.focus=${o.focus}`,
    ...(o.skip ? [`--ginkgo.skip=${o.skip}`] : []),
    "--ginkgo.noColor",
    "--ginkgo.v",
    `--report-dir=${o.reportDir}`,
  ];
  const logFile = join(o.reportDir, "e2e.log");
  const out = await open(logFile, "w");
  const started = Date.now();
  const internet = await internetStandIn();
  const child = spawn(binary, args, {
    cwd: o.reportDir,
    stdio: ["ignore", out.fd, out.fd],
    env: { ...process.env, ...internet.env },
  });
  await out.close();
  const timer = setTimeout(() => child.kill("SIGTERM"), o.timeoutMs ?? 6 * 3600_000);
  const exitCode = await new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  clearTimeout(timer);
  await internet.close();
  const log = await readFile(logFile, "utf8");
  const junit = await readFile(join(o.reportDir, "junit_01.xml"), "utf8").catch(() => "");
  const all = parseJunit(junit);
  const focus = new RegExp(o.focus);
  const skip = o.skip ? new RegExp(o.skip) : null;
  const reasons = skipReasons(log);
  const results = all
    .filter((t) => t.started)
    .map(({ started: _, ...t }) =>
      t.outcome === "skipped" && !t.message ? { ...t, message: reasons.get(t.name) ?? "" } : t,
    );
  const excluded = all
    .filter((t) => !t.started && focus.test(t.name) && skip?.test(t.name))
    .map((t) => t.name);
  return { results, excluded, exitCode, seconds: (Date.now() - started) / 1000, log };
}
