// What a compiled rule set decides for one new connection, by the same rules
// the nft script enforces: the source pod's egress (if it is isolated), then
// the destination pod's ingress (if it is isolated). Used to explain a pod's
// policy and to check the kernel against the compiler.

import type { CompiledRule, Direction, RuleSet } from "./compile.js";
import type { Protocol } from "./model.js";
import { contains } from "./ranges.js";

export interface Flow {
  src: string;
  dst: string;
  /** null for a protocol without ports (ICMP). */
  protocol: Protocol | null;
  port: number;
}

function matches(r: CompiledRule, f: Flow): boolean {
  const [self, other] = r.direction === "ingress" ? [f.dst, f.src] : [f.src, f.dst];
  if (!r.pods.includes(self)) return false;
  if (r.peers && !contains(r.peers, other)) return false;
  if (r.ports === null) return true;
  if (f.protocol === null) return false;
  const numeric = r.ports.some((p) => p.protocol === f.protocol && f.port >= p.first && f.port <= p.last);
  return numeric || r.named.some((p) => p.ip === f.dst && p.protocol === f.protocol && p.port === f.port);
}

/** The rule that admits the flow in this direction, "not isolated", or null when it is dropped. */
export function admittedBy(rs: RuleSet, direction: Direction, f: Flow): CompiledRule | "not isolated" | null {
  const isolated =
    direction === "ingress" ? rs.ingressIsolated.includes(f.dst) : rs.egressIsolated.includes(f.src);
  if (!isolated) return "not isolated";
  return rs.rules.find((r) => r.direction === direction && matches(r, f)) ?? null;
}

export function admits(rs: RuleSet, f: Flow): boolean {
  return admittedBy(rs, "egress", f) !== null && admittedBy(rs, "ingress", f) !== null;
}
