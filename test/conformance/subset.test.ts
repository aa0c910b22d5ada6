// A part of Kubernetes' own e2e suite, run in `npm test` (the whole run is
// `npm run conformance`): the four conformance tests of the Networking
// Granular Checks for pods, a few Service tests, and cluster DNS, against
// a 2-node `sandbox up --cluster --test-images` with eniway installed by
// helm. Every selected test must run and pass.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { conformance } from "./run.js";

const SELECTED = [
  "[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http [NodeConformance] [Conformance]",
  "[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: udp [NodeConformance] [Conformance]",
  "[sig-network] Networking Granular Checks: Pods should function for node-pod communication: http [LinuxOnly] [NodeConformance] [Conformance]",
  "[sig-network] Networking Granular Checks: Pods should function for node-pod communication: udp [LinuxOnly] [NodeConformance] [Conformance]",
  "[sig-network] Services should serve a basic endpoint from pods  [Conformance]",
  "[sig-network] Services should serve multiport endpoints from pods  [Conformance]",
  "[sig-network] Services should be able to create a functioning NodePort service [Conformance]",
  "[sig-network] DNS should provide DNS for services  [Conformance]",
];

/**
 * A focus that selects exactly these names. Ginkgo matches it against the
 * spec's full text, which begins with the (empty) text of the suite's root:
 * anchor the end only.
 */
const focus = SELECTED.map((n) => `${n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`).join("|");

describe("the upstream e2e suite, a subset (sandbox cluster, eniway by helm)", () => {
  it("runs and passes every selected test", async () => {
    const dir = await mkdtemp(join(tmpdir(), "eniway-e2e-subset-"));
    try {
      await mkdir(dir, { recursive: true });
      const run = await conformance({ focus, skip: "", reportDir: dir });
      const summary = run.results.map(
        (t) => `${t.outcome} ${t.seconds.toFixed(0)}s ${t.name}${t.message ? `: ${t.message}` : ""}`,
      );
      console.log(`e2e subset in ${run.seconds.toFixed(0)} s:\n${summary.join("\n")}`);
      expect(run.results.map((t) => t.name).sort(), "every selected test ran").toEqual([...SELECTED].sort());
      expect(
        run.results.filter((t) => t.outcome !== "passed").map((t) => `${t.name}: ${t.message}`),
        summary.join("\n"),
      ).toEqual([]);
      expect(run.exitCode).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 1_800_000);
});
