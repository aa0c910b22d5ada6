// renderDelta as text: what one pod's arrival or departure sends to nft,
// and the fail-closed gate in the chains. (test/policy/nft.test.ts runs
// deltas and the gate against the kernel.)

import { describe, expect, it } from "vitest";
import type { RuleSet } from "../../cni/policy/compile.js";
import { type NodeRules, render, renderDelta } from "../../cni/policy/nft.js";

const veth = (ip: string): string => `eni${ip.split(".")[3]!.padStart(11, "0")}`;
const rules = (pods: string[]): NodeRules => ({
  rules: ruleSet(pods),
  admitted: pods.map((ip) => ({ hostIf: veth(ip), ip })),
});
const ruleSet = (pods: string[]): RuleSet => ({
  ingressIsolated: pods,
  egressIsolated: [],
  rules: [
    {
      id: "default/web ingress 0",
      direction: "ingress",
      pods,
      peers: pods.map((ip) => {
        const n = Number(ip.split(".")[3]);
        return [0x0a000000 + n, 0x0a000000 + n] as const;
      }),
      ports: [{ protocol: "TCP", first: 80, last: 80 }],
      named: pods.map((ip) => ({ ip, protocol: "TCP" as const, port: 8080 })),
    },
  ],
  problems: [],
});

describe("renderDelta", () => {
  it("a pod that comes adds its elements and its counter, and nothing else", () => {
    const d = renderDelta(rules(["10.0.0.1", "10.0.0.2"]), rules(["10.0.0.1", "10.0.0.2", "10.0.0.3"]));
    expect(d?.deleted).toEqual([]);
    expect(d?.script.split("\n").filter(Boolean)).toEqual([
      "add counter inet eniway in_10_0_0_3",
      'add element inet eniway admitted { "eni00000000003" . 10.0.0.3 }',
      "add element inet eniway r0_pods { 10.0.0.3 }",
      // An interval set's ranges merge (the compiler's would be 10.0.0.1-10.0.0.3 now): it is filled anew.
      "flush set inet eniway r0_peers",
      "add element inet eniway r0_peers { 10.0.0.1, 10.0.0.2, 10.0.0.3 }",
      "add element inet eniway r0_named { 10.0.0.3 . tcp . 8080 }",
      "add element inet eniway in_isolated { 10.0.0.3 }",
      'add element inet eniway in_drops { 10.0.0.3 : "in_10_0_0_3" }',
    ]);
  });

  it("a pod that goes deletes its elements (a map's by key), its counter last", () => {
    const d = renderDelta(rules(["10.0.0.1", "10.0.0.5"]), rules(["10.0.0.1"]));
    expect(d?.deleted).toEqual(["in_10_0_0_5"]);
    const lines = d?.script.split("\n").filter(Boolean) ?? [];
    expect(lines).toContain("delete element inet eniway r0_pods { 10.0.0.5 }");
    expect(lines).toContain('delete element inet eniway admitted { "eni00000000005" . 10.0.0.5 }');
    expect(lines).toContain("delete element inet eniway in_drops { 10.0.0.5 }");
    expect(lines.at(-1)).toBe("delete counter inet eniway in_10_0_0_5");
    expect(lines.filter((l) => l.startsWith("add ") && !l.includes("r0_peers"))).toEqual([]);
  });

  it("nothing changed: an empty script; other chains: no delta (the table is made anew)", () => {
    expect(renderDelta(rules(["10.0.0.1"]), rules(["10.0.0.1"]))?.script).toBe("");
    const more = ruleSet(["10.0.0.1"]);
    const other: NodeRules = {
      rules: { ...more, rules: [...more.rules, { ...more.rules[0]!, id: "default/db ingress 0" }] },
      admitted: rules(["10.0.0.1"]).admitted,
    };
    expect(renderDelta(rules(["10.0.0.1"]), other)).toBeNull();
    expect(render(other)).toContain("delete table inet eniway");
  });
});

describe("the gate", () => {
  it("drops what comes from or goes to a pod's veth unless the veth and the address are admitted together", () => {
    const text = render(rules(["10.0.0.1"]));
    expect(text).toContain(
      'set admitted { type ifname . ipv4_addr; elements = { "eni00000000001" . 10.0.0.1 }; }',
    );
    const chain = (name: string): string[] =>
      (new RegExp(`chain ${name} \\{[^}]*\\}`).exec(text)?.[0] ?? "")
        .split("\n")
        .map((l) => l.trim())
        .slice(2, -1);
    // Forward: the gate before conntrack's shortcut (no pod rides another's entries); IPv6 only
    // for a pod's own address while no policy isolates it (open6), anything else dropped.
    expect(chain("forward")).toEqual([
      'iifname "eni*" meta nfproto ipv6 iifname . ip6 saddr != @open6 drop',
      'iifname "eni*" meta nfproto ipv4 iifname . ip saddr != @admitted drop',
      'oifname "eni*" meta nfproto ipv6 oifname . ip6 daddr != @open6 drop',
      'oifname "eni*" meta nfproto ipv4 oifname . ip daddr != @admitted drop',
      "ct state established,related accept",
      "jump egress",
      "jump ingress",
    ]);
    // Input: replies first, so the node's own connections to a held pod (kubelet probes) are answered.
    expect(chain("input")).toEqual([
      "ct state established,related accept",
      'iifname "eni*" meta nfproto ipv6 iifname . ip6 saddr != @open6 drop',
      'iifname "eni*" meta nfproto ipv4 iifname . ip saddr != @admitted drop',
      "jump egress",
    ]);
  });

  it("admits only a pod's own veth and IPv4 address: anything else is refused before it reaches nft", () => {
    const bad = (hostIf: string, ip: string): NodeRules => ({
      rules: ruleSet([]),
      admitted: [{ hostIf, ip }],
    });
    expect(() => render(bad('eni0" } ; flush ruleset', "10.0.0.1"))).toThrow(/not a pod's host veth/);
    expect(() => render(bad("eth0", "10.0.0.1"))).toThrow(/not a pod's host veth/);
    expect(() => render(bad("eni00000000001", "fd00::1"))).toThrow(/not a pod's host veth/);
  });
});
