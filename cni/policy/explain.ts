// What a rule set means for one pod, in words an operator reads: whether it
// is isolated each way, and each rule that admits traffic to it (ingress) or
// from it (egress), with its peers and ports.

import type { CompiledRule, Direction, PortRange, RuleSet } from "./compile.js";
import { formatRange } from "./ranges.js";

export interface RuleText {
  /** "namespace/policy direction index" */
  id: string;
  peers: string[] | "any";
  ports: string[] | "any";
}

export interface DirectionText {
  isolated: boolean;
  rules: RuleText[];
  dropped: number;
}

export interface Explanation {
  ip: string;
  ingress: DirectionText;
  egress: DirectionText;
}

const portText = (p: PortRange): string =>
  `${p.protocol}/${p.first === 0 && p.last === 65535 ? "*" : p.first === p.last ? p.first : `${p.first}-${p.last}`}`;

function ruleText(r: CompiledRule, ip: string): RuleText {
  // Ingress: the pod's own named ports; egress: the destination pods' ones.
  const named = r.named.filter((n) => r.direction === "egress" || n.ip === ip);
  const ports =
    r.ports === null
      ? "any"
      : [
          ...r.ports.map(portText),
          ...named.map((n) =>
            r.direction === "egress" ? `${n.protocol}/${n.port} on ${n.ip}` : `${n.protocol}/${n.port}`,
          ),
        ];
  return { id: r.id, peers: r.peers === null ? "any" : r.peers.map(formatRange), ports };
}

export function explain(rs: RuleSet, ip: string, dropped: (d: Direction) => number): Explanation {
  const side = (d: Direction): DirectionText => {
    const isolated = (d === "ingress" ? rs.ingressIsolated : rs.egressIsolated).includes(ip);
    const rules = rs.rules
      .filter((r) => r.direction === d && r.pods.includes(ip))
      .map((r) => ruleText(r, ip));
    return { isolated, rules, dropped: dropped(d) };
  };
  return { ip, ingress: side("ingress"), egress: side("egress") };
}
