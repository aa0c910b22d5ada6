// Reading what the upstream e2e suite reports (test/conformance/e2e.ts) and
// CONFORMANCE.md from it (report.ts): JUnit results, skip reasons from the
// verbose output, known failures, and tests that did not run.

import { describe, expect, it } from "vitest";
import { parseJunit, skipReasons } from "../conformance/e2e.js";
import { renderReport } from "../conformance/report.js";

const JUNIT = `<?xml version="1.0" encoding="UTF-8"?>
  <testsuite name="Kubernetes e2e suite" tests="4" failures="1" errors="0" time="90">
      <testcase name="[sig-storage] something else" classname="Kubernetes e2e suite" time="0">
          <skipped></skipped>
      </testcase>
      <testcase name="[sig-network] Services should serve a basic endpoint from pods  [Conformance]" classname="Kubernetes e2e suite" time="24.5"></testcase>
      <testcase name="[sig-network] NetworkPolicy [LinuxOnly] NetworkPolicy between server and client should deny ingress [Feature:NetworkPolicy]" classname="Kubernetes e2e suite" time="61.2">
          <failure type="Failure">k8s.io/kubernetes/test/e2e/network/network_policy.go:1&#xA;Dec  2 04:41:13.226: Pod client-a should not be able to connect &amp; it did&#xA;k8s.io/kubernetes/vendor/runner.go:113</failure>
          <system-out>lots</system-out>
      </testcase>
      <testcase name="[sig-network] Networking Granular Checks: Pods should function for node-pod communication: sctp [LinuxOnly][Feature:SCTPConnectivity][Disruptive]" classname="Kubernetes e2e suite" time="0.021">
          <skipped></skipped>
      </testcase>
  </testsuite>`;

const LOG = `STEP: Destroying namespace "pod-network-test-4536" for this suite.

S [SKIPPING] [0.022 seconds]
[sig-network] Networking
k8s.io/kubernetes/test/e2e/common/networking.go:27
  Granular Checks: Pods
  k8s.io/kubernetes/test/e2e/common/networking.go:30
    should function for node-pod communication: sctp [LinuxOnly][Feature:SCTPConnectivity][Disruptive] [It]
    k8s.io/kubernetes/test/e2e/common/networking.go:137

    Skipping SCTP node to pod test until DialFromNode supports SCTP #96482

    k8s.io/kubernetes/test/e2e/common/networking.go:138
------------------------------
SSSSSS`;

describe("the e2e suite's reports", () => {
  it("JUnit: passed, failed (with its message, without source lines) and skipped; which ones started", () => {
    const r = parseJunit(JUNIT);
    expect(r.map((t) => [t.outcome, t.started])).toEqual([
      ["skipped", false],
      ["passed", true],
      ["failed", true],
      ["skipped", true],
    ]);
    expect(r[2]!.message).toBe("Dec  2 04:41:13.226: Pod client-a should not be able to connect & it did");
    expect(r[1]!.seconds).toBe(24.5);
  });

  it("the reason of a test that skipped itself, under the name JUnit gives it", () => {
    const reasons = skipReasons(LOG);
    expect([...reasons]).toEqual([
      [
        "[sig-network] Networking Granular Checks: Pods should function for node-pod communication: sctp [LinuxOnly][Feature:SCTPConnectivity][Disruptive]",
        "Skipping SCTP node to pod test until DialFromNode supports SCTP #96482",
      ],
    ]);
    expect(reasons.has(parseJunit(JUNIT)[3]!.name)).toBe(true);
  });

  it("CONFORMANCE.md: groups, known failures with their issue, tests not run with why", () => {
    const results = parseJunit(JUNIT)
      .filter((t) => t.started)
      .map(({ started: _, ...t }) => t);
    const md = renderReport({
      date: "2026-12-02T00:00:00.000Z",
      command: "npm run conformance",
      focus: "x",
      skip: "SCTP",
      machine: { CPU: "test" },
      versions: { Kubernetes: "v1.20.2" },
      results,
      notRun: [
        {
          name: "[sig-network] NetworkPolicy should allow SCTP [Feature:NetworkPolicy] [Feature:SCTP]",
          reason: "no SCTP here",
        },
      ],
      seconds: 600,
      known: [{ pattern: /\[Feature:NetworkPolicy\]/, why: "not enforced yet: issue 99 makes these pass" }],
    });
    expect(md).toContain("| sig-network conformance | 1 | 0 | 0 | 0 | 0 |");
    expect(md).toContain("| NetworkPolicy | 0 | 0 | 1 | 0 | 1 |");
    expect(md).toMatch(
      /\| \[sig-network\] NetworkPolicy \[LinuxOnly\].*\| known failure \| 61\.2 \| not enforced yet: issue 99 makes these pass\./,
    );
    expect(md).toContain(
      "| [sig-network] NetworkPolicy should allow SCTP [Feature:NetworkPolicy] [Feature:SCTP] | no SCTP here |",
    );
    expect(md).toContain("| CPU | test |");
    expect(md).toContain(
      "- tests matching `\\[Feature:NetworkPolicy\\]`: not enforced yet: issue 99 makes these pass.",
    );
  });
});
