// The operator CLI against a daemon socket: `eniway status|pods|enis|mapping|gc|policy`.
// Human tables by default, `--json` for scripts.

import type { DirectionText, Explanation } from "../../cni/policy/explain.js";
import { socketRequest } from "../../lib/http.js";
import type { Allocation, PoolSummary } from "../../pool/pool.js";
import type { Mapping } from "../daemon/mapping.js";

/** The flags every operator command takes (their table is in src/cli/commands.ts). */
export interface CtlFlags {
  socket: string;
  json: boolean;
}

export type CtlCommand = "status" | "pods" | "enis" | "mapping" | "gc";

async function api(socket: string, method: string, path: string): Promise<unknown> {
  const r = await socketRequest(socket, method, path, undefined, 60_000).catch((e: NodeJS.ErrnoException) => {
    throw new Error(
      `cannot reach the daemon at ${socket}: ${e.code ?? e.message} (is it running? --socket PATH)`,
    );
  });
  if ("raw" in r.body) throw new Error(`the daemon answered ${r.status} with a body that is not JSON`);
  if (r.status >= 400) {
    const e = (r.body as { error?: { message?: string } }).error;
    throw new Error(`the daemon answered ${r.status}: ${e?.message ?? JSON.stringify(r.body)}`);
  }
  return r.body;
}

/** Left-aligned columns from rows of strings. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

const podName = (a: Allocation): string => (a.pod.name ? `${a.pod.namespace}/${a.pod.name}` : "-");

/** Asks the daemon and prints its answer; the exit code. */
export async function ctl(cmd: CtlCommand, f: CtlFlags, out: (s: string) => void): Promise<number> {
  const { socket, json } = f;
  const show = (data: unknown, human: () => string): number => {
    out(`${json ? JSON.stringify(data, null, 2) : human()}\n`);
    return 0;
  };
  switch (cmd) {
    case "status": {
      const s = (await api(socket, "GET", "/v1/pool")) as PoolSummary;
      // /readyz answers 503 while the daemon starts: that is "not ready", not a failure.
      const ready = (await api(socket, "GET", "/readyz").catch(() => ({ ready: false }))) as {
        ready: boolean;
      };
      return show({ ready: ready.ready, ...s }, () =>
        [
          `ready:     ${ready.ready ? "yes" : "no"}`,
          `ENIs:      ${s.enis.length} of ${s.limits.maxSecondaryEnis} (${s.limits.ipsPerEni} IPs each; ${s.targets.mode} mode, ${s.capacity} pods)`,
          `IPs:       ${s.idle} idle, ${s.assigned} assigned, ${s.cooling} cooling, ${s.pending} pending, ${s.releasing} releasing`,
          `targets:   minIdle ${s.targets.minIdle}, maxIdle ${s.targets.maxIdle}`,
          `waiting:   ${s.waiting} allocation(s)`,
          `in flight: ${s.intents} cloud operation(s)`,
          ...Object.entries(s.blockedVSwitches)
            .filter(([, until]) => until > Date.now())
            .map(([v, until]) => `blocked:   ${v} until ${new Date(until).toISOString()}`),
        ].join("\n"),
      );
    }
    case "pods": {
      const { allocations } = (await api(socket, "GET", "/v1/allocations")) as { allocations: Allocation[] };
      // Dual stack: the pods' IPv6 addresses in a column of their own.
      const dual = allocations.some((a) => a.ipv6);
      return show(allocations, () =>
        table(
          ["POD", "CONTAINER", "IFNAME", "IP", ...(dual ? ["IPV6"] : []), "ENI", "NETWORK"],
          allocations.map((a) => [
            podName(a),
            a.containerId.slice(0, 12),
            a.ifname,
            a.ip,
            ...(dual ? [a.ipv6 ?? "-"] : []),
            a.eniId,
            a.network || "-",
          ]),
        ),
      );
    }
    case "enis": {
      const s = (await api(socket, "GET", "/v1/pool")) as PoolSummary;
      return show(s.enis, () =>
        table(
          ["ENI", "PHASE", "VSWITCH", "MAC", "IPS", "ASSIGNED", "PREFIXES", "IPV6"],
          s.enis.map((e) => [
            e.eniId,
            e.phase,
            e.vSwitchId,
            e.mac,
            String(e.ips),
            String(e.assigned),
            String(e.prefixes.length),
            String(e.ipv6s),
          ]),
        ),
      );
    }
    case "mapping": {
      const m = (await api(socket, "GET", "/v1/mapping")) as Mapping;
      show(m, () =>
        [
          table(
            ["IP", "ENI", "STATE", "POOL POD", "API POD", "CLOUD", "PROBLEM"],
            m.rows.map((r) => [
              r.ip,
              r.eniId || "-",
              r.state || "-",
              r.allocatedTo || "-",
              r.apiPod || "-",
              r.inCloud ? "yes" : "no",
              r.problem,
            ]),
          ),
          m.kubernetes ? "" : "(Kubernetes is not enabled on this daemon: pods were not compared)",
          `${m.problems} problem(s)`,
        ]
          .filter(Boolean)
          .join("\n"),
      );
      return m.problems > 0 ? 1 : 0;
    }
    case "gc": {
      const report = (await api(socket, "POST", "/v1/resync")) as Record<string, unknown[] | number>;
      return show(report, () =>
        Object.entries(report)
          .map(
            ([k, v]) =>
              `${k.padEnd(20)} ${Array.isArray(v) ? (v.length ? v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(", ") : "-") : v}`,
          )
          .join("\n"),
      );
    }
  }
}

/** `eniway policy NAMESPACE/NAME`: what may reach the pod, and what it may reach. */
export async function policy(pod: string, f: CtlFlags, out: (s: string) => void): Promise<number> {
  if (!/^[a-z0-9.-]+\/[a-z0-9.-]+$/.test(pod))
    throw new Error(`policy: ${JSON.stringify(pod)} is not NAMESPACE/NAME`);
  const e = (await api(f.socket, "GET", `/v1/policy?pod=${encodeURIComponent(pod)}`)) as Explanation & {
    pod: string;
    synced: boolean;
    held: string | null;
  };
  const side = (title: string, d: DirectionText, who: string): string[] => {
    if (!d.isolated)
      return [`${title}: not isolated (no policy selects it for ${title.toLowerCase()}): ${who} any`];
    const lines = [`${title}: isolated; ${d.dropped} packet(s) dropped`];
    if (d.rules.length === 0) lines.push("  nothing is allowed");
    for (const r of d.rules) {
      const peers = r.peers === "any" ? "any address" : r.peers.join(", ");
      const ports = r.ports === "any" ? "any port" : r.ports.join(", ");
      lines.push(`  ${r.id}: ${peers} on ${ports}`);
    }
    return lines;
  };
  out(
    `${
      f.json
        ? JSON.stringify(e, null, 2)
        : [
            `pod ${e.pod} (${e.ip})${e.synced ? "" : " — the daemon's caches have not synced yet"}`,
            ...(e.held
              ? [`Held: every packet from and to it is dropped until its rules are in: ${e.held}`]
              : []),
            ...side("Ingress", e.ingress, "from"),
            ...side("Egress", e.egress, "to"),
          ].join("\n")
    }\n`,
  );
  return 0;
}
