// CONFORMANCE.md from one run of the upstream e2e suite: the machine and
// versions, every selected test with its result and time, the known
// failures with the issue that makes them pass, and every selected test
// that did not run, with why.

import type { TestResult } from "./e2e.js";

export interface ConformanceReport {
  date: string;
  command: string;
  focus: string;
  skip: string;
  machine: Record<string, string>;
  versions: Record<string, string>;
  results: TestResult[];
  /** Selected by the focus, left out by the skip regex: the test and why. */
  notRun: { name: string; reason: string }[];
  seconds: number;
  /** The known failures to mark; KNOWN_FAILURES by default. */
  known?: { pattern: RegExp; why: string }[];
}

/** Failures that are expected until the work that makes them pass lands: a test name pattern and that work. */
export const KNOWN_FAILURES: { pattern: RegExp; why: string }[] = [];

const cell = (s: string): string => s.replaceAll("|", "\\|").replaceAll("\n", "<br>");

export const knownFailure = (name: string, known = KNOWN_FAILURES): string | null =>
  known.find((k) => k.pattern.test(name))?.why ?? null;

/** The group a test belongs to in the report. */
function group(name: string): string {
  if (/\[Conformance\]/.test(name)) return "sig-network conformance";
  if (/\[Feature:NetworkPolicy\]/.test(name)) return "NetworkPolicy";
  if (/Networking Granular Checks/.test(name)) return "Networking Granular Checks (not conformance)";
  return "other";
}

export function renderReport(r: ConformanceReport): string {
  const knownOf = (name: string): string | null => knownFailure(name, r.known ?? KNOWN_FAILURES);
  const count = (list: TestResult[], o: TestResult["outcome"]): number =>
    list.filter((t) => t.outcome === o).length;
  const lines: string[] = [
    "# Conformance",
    "",
    `Written by \`npm run conformance\` (test/conformance/run.ts) on ${r.date}: Kubernetes' own e2e suite, built from the same Debian source as the sandbox cluster's binaries, against a 2-node \`eniway sandbox up --cluster --test-images\`. Run it again to refresh this file.`,
    "",
    `Command: \`${r.command}\``,
    "",
    `Focus: \`${r.focus}\`${r.skip ? `; skip: \`${r.skip}\`` : ""}. The whole run took ${Math.round(r.seconds / 60)} minutes.`,
    "",
    "## Machine and versions",
    "",
    "| part | this run |",
    "| --- | --- |",
    ...Object.entries({ ...r.machine, ...r.versions }).map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`),
    "",
    "## Summary",
    "",
    "| group | passed | failed | known failures | skipped | not run |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  const groups = [
    ...new Set([...r.results.map((t) => group(t.name)), ...r.notRun.map((t) => group(t.name))]),
  ];
  for (const g of groups) {
    const list = r.results.filter((t) => group(t.name) === g);
    const known = list.filter((t) => t.outcome === "failed" && knownOf(t.name)).length;
    lines.push(
      `| ${g} | ${count(list, "passed")} | ${count(list, "failed") - known} | ${known} | ${count(list, "skipped")} | ${r.notRun.filter((t) => group(t.name) === g).length} |`,
    );
  }
  for (const g of groups) {
    const list = r.results.filter((t) => group(t.name) === g).sort((a, b) => a.name.localeCompare(b.name));
    if (list.length === 0) continue;
    lines.push("", `## ${g}`, "", "| test | result | seconds | why |", "| --- | --- | --- | --- |");
    for (const t of list) {
      const known = t.outcome === "failed" ? knownOf(t.name) : null;
      const result = known ? "known failure" : t.outcome;
      const why = known ? `${known}. ${t.message}` : t.message;
      lines.push(`| ${cell(t.name)} | ${result} | ${t.seconds.toFixed(1)} | ${cell(why)} |`);
    }
  }
  if (r.notRun.length > 0) {
    lines.push("", "## Selected but not run", "", "| test | why |", "| --- | --- |");
    for (const t of [...r.notRun].sort((a, b) => a.name.localeCompare(b.name)))
      lines.push(`| ${cell(t.name)} | ${cell(t.reason)} |`);
  }
  const known = r.known ?? KNOWN_FAILURES;
  lines.push(
    "",
    "## Known failures",
    "",
    ...(known.length
      ? known.map((k) => `- tests matching \`${k.pattern.source}\`: ${k.why}.`)
      : ["None: every failure above is a defect."]),
    "",
  );
  return lines.join("\n");
}
