// The enforcer: the one place that runs nft. Each rule set goes to the kernel
// in one transaction over a long-lived nft session: only the set elements
// and counters that changed when the chains stay the same, the whole table
// anew otherwise (and always first, after a start). Before the daemon serves
// pods, `prepare` makes sure the kernel has the fail-closed gate (a table
// left by an earlier run is kept as it is). It keeps the pods' drop counts
// across replacements (a replacement makes the counters anew), and removes
// the table when policy is switched off.

import { CommandError } from "../../lib/exec.js";
import { run } from "../../lib/ip.js";
import type { Direction } from "./compile.js";
import { type Admitted, counterName, type NodeRules, render, renderDelta, TABLE } from "./nft.js";
import { createNftSession } from "./nft-session.js";

export interface Drops {
  direction: Direction;
  ip: string;
  packets: number;
}

export interface Enforcer {
  /**
   * The gate is in the kernel once this resolves: a table an earlier run
   * left is kept (its rules and admitted pods stay until the first apply),
   * else `baseline` is applied. Either way: the pods the kernel admits.
   */
  prepare(baseline: NodeRules): Promise<{ kept: boolean; admitted: Admitted[] }>;
  /** Makes the node enforce exactly these rules; resolves once the kernel has them. */
  apply(nr: NodeRules): Promise<void>;
  /** Packets dropped per pod and direction since the enforcer started. */
  drops(): Promise<Drops[]>;
  /** No eniway table any more (policy switched off). */
  remove(): Promise<void>;
  /** Ends the nft session; the rules stay in the kernel. */
  close(): void;
}

const COUNTER = /^(in|out)_(\d+)_(\d+)_(\d+)_(\d+)$/;

function parseCounters(json: string): Drops[] {
  const doc = JSON.parse(json) as { nftables?: { counter?: { name: string; packets: number } }[] };
  return (doc.nftables ?? []).flatMap((o) => {
    const m = o.counter ? COUNTER.exec(o.counter.name) : null;
    if (!m || !o.counter) return [];
    return [
      {
        direction: m[1] === "in" ? "ingress" : "egress",
        ip: m.slice(2).join("."),
        packets: o.counter.packets,
      },
    ];
  });
}

function parseAdmitted(json: string): Admitted[] {
  const doc = JSON.parse(json) as { nftables?: { set?: { elem?: { concat?: unknown[] }[] } }[] };
  return (doc.nftables ?? []).flatMap((o) =>
    (o.set?.elem ?? []).flatMap((e) => {
      const [hostIf, ip] = e.concat ?? [];
      return typeof hostIf === "string" && typeof ip === "string" ? [{ hostIf, ip }] : [];
    }),
  );
}

const missing = (e: unknown): boolean =>
  e instanceof CommandError && /No such file or directory/.test(e.message);

/** `netns`: the node's network namespace ("" for the daemon's own). */
export function createNftEnforcer(netns: string): Enforcer {
  const before = new Map<string, number>(); // what earlier tables counted, by "direction ip"
  const keyOf = (d: Drops): string => `${d.direction} ${d.ip}`;
  const session = createNftSession(netns);
  const read = async (): Promise<Drops[]> => {
    try {
      return parseCounters(await session.list(["list", "counters", "table", "inet", TABLE]));
    } catch (e) {
      if (missing(e)) return [];
      throw e;
    }
  };
  let applied: NodeRules | null = null; // what the kernel holds, as far as this enforcer knows
  /** Counts read before their counters go are kept (packets dropped in between are not). */
  const keep = (counted: Drops[], only?: Set<string>): void => {
    for (const d of counted)
      if (!only || only.has(counterName(d.direction, d.ip)))
        before.set(keyOf(d), (before.get(keyOf(d)) ?? 0) + d.packets);
  };
  const replace = async (nr: NodeRules): Promise<void> => {
    const counted = await read();
    await session.run(render(nr));
    keep(counted);
  };
  // One change of the table at a time: a prepare that finds no gate must not land after an apply.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const p = queue.then(work, work);
    queue = p.catch(() => {});
    return p;
  };
  return {
    prepare: (baseline) =>
      serially(async () => {
        try {
          const json = await session.list(["list", "set", "inet", TABLE, "admitted"]);
          return { kept: true, admitted: parseAdmitted(json) };
        } catch (e) {
          if (!missing(e)) throw e;
        }
        await replace(baseline);
        applied = baseline;
        return { kept: false, admitted: baseline.admitted };
      }),
    apply: (nr) =>
      serially(async () => {
        const delta = applied ? renderDelta(applied, nr) : null;
        applied = null;
        if (!delta) await replace(nr);
        else {
          try {
            const counted = delta.deleted.length ? await read() : [];
            await session.run(delta.script);
            keep(counted, new Set(delta.deleted));
          } catch {
            await replace(nr); // the table is not what this enforcer made: make it anew
          }
        }
        applied = nr;
      }),
    async drops() {
      const now = new Map(before);
      for (const d of await read()) now.set(keyOf(d), (now.get(keyOf(d)) ?? 0) + d.packets);
      return [...now].map(([k, packets]) => {
        const [direction, ip] = k.split(" ") as [Direction, string];
        return { direction, ip, packets };
      });
    },
    remove: () =>
      serially(async () => {
        applied = null;
        await run(netns, ["nft", "-f", "-"], `table inet ${TABLE} {}\ndelete table inet ${TABLE}\n`);
      }),
    close: () => session.close(),
  };
}
