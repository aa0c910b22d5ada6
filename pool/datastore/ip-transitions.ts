// The named transitions of one IP: idle → assigned → cooling → idle, and
// idle → releasing → gone (or back to idle). Each checks the state it starts
// from and refuses one it may not take (TransitionError). The 16 addresses of
// an IPv4 prefix are IPs too (each with its `prefix`), but come into the pool,
// go out for release and leave it together.

import { ipv4PrefixAddresses } from "../../lib/net.js";
import { byText } from "../../lib/order.js";
import type { Owner, StoredIp } from "../store.js";
import { type IpRecord, podKey, TransitionError, type TxContext, without } from "./records.js";

export interface IpTransitions {
  /** Idle on a ready ENI, or cooling on one and held for this pod → assigned to `owner`. */
  assign(ip: string, owner: Owner): IpRecord;
  /** Assigned → assigned, its owner's network and namespace path replaced (an ADD repeated for a new sandbox). */
  reown(ip: string, change: { network: string; netns: string }): IpRecord;
  /**
   * Assigned → cooling for `forMs`; with `heldFor` ("namespace/name") kept
   * for the StatefulSet pod that returns under that name.
   */
  cool(ip: string, opts: { forMs: number; heldFor: string | null }): void;
  /** Every cooling IP whose time is up → idle (idle since its cooling ended). How many. */
  expireCooling(): number;
  /** IPs new to the pool on a known ENI → idle; one the pool tracks is left alone (it may be a pod's). The new ones. */
  addIdle(eniId: string, ips: readonly string[]): string[];
  /**
   * Prefixes new to the pool on a known ENI → their 16 addresses idle (an
   * address the pool tracks already is left alone). The new prefixes.
   */
  addIdlePrefixes(eniId: string, prefixes: readonly string[]): string[];
  /** The ENI's single idle IPs among `ips` → releasing: out of the allocatable set. Those taken. */
  takeForRelease(eniId: string, ips: readonly string[]): string[];
  /**
   * The ENI's prefixes among `prefixes` whose 16 addresses are all idle →
   * every address releasing. Those taken (a prefix with any address in use stays).
   */
  takePrefixesForRelease(eniId: string, prefixes: readonly string[]): string[];
  /** Releasing → idle: the cloud did not release them. */
  giveBack(ips: readonly string[]): void;
  /** Releasing → gone: the cloud released them. */
  forget(ips: readonly string[]): void;
  /**
   * Dual stack: IPv6 addresses new to the ENI → each paired with one of its
   * single IPv4s that has none and is idle or cooling (lowest first). Those
   * left over: more than the ENI had IPv4s for, for the caller to give back.
   */
  pairIpv6(eniId: string, ipv6s: readonly string[]): string[];
  /** The IPv6 addresses among `ipv6s` leave the IPv4s they were paired with (the cloud no longer has them). Those records. */
  unpairIpv6(ipv6s: readonly string[]): IpRecord[];
  /** Any phase → gone: the cloud no longer has the IP. Its last record, if the pool had it. */
  dropIp(ip: string): IpRecord | undefined;
  /** Every address of the ENI's prefix, any phase → gone: the cloud no longer has it. Their last records. */
  dropPrefix(eniId: string, prefix: string): IpRecord[];
}

/** The records of a prefix's addresses that the pool tracks as that prefix's (on any ENI). */
export function prefixRecords(doc: TxContext["doc"], prefix: string): IpRecord[] {
  return ipv4PrefixAddresses(prefix)
    .map((ip) => doc.ips[ip])
    .filter((r): r is IpRecord => r?.prefix === prefix);
}

export function ipTransitions(ctx: TxContext): IpTransitions {
  const { doc, journal } = ctx;
  const put = (row: StoredIp): IpRecord => {
    journal.put("ips", row.ip, row);
    return row;
  };
  const known = (ip: string): IpRecord => {
    const rec = doc.ips[ip];
    if (!rec) throw new TransitionError(`${ip} is not in the pool`);
    return rec;
  };
  const refuse = (rec: IpRecord, what: string): never => {
    throw new TransitionError(`cannot ${what} ${rec.ip}: it is ${rec.phase}`);
  };
  /** The releasing ones among `ips`. */
  const releasing = (ips: readonly string[]): IpRecord[] =>
    ips.map((ip) => doc.ips[ip]).filter((r): r is IpRecord => r?.phase === "releasing");

  return {
    assign(ip, owner) {
      const rec = known(ip);
      const free = rec.phase === "idle" || (rec.phase === "cooling" && rec.heldFor === podKey(owner.pod));
      if (!free) refuse(rec, `assign to ${podKey(owner.pod)}`);
      if (doc.enis[rec.eniId]?.phase !== "ready")
        throw new TransitionError(`cannot assign ${ip}: its ENI ${rec.eniId} is not ready`);
      return put({
        ...without(rec, "coolUntil", "heldFor"),
        phase: "assigned",
        owner: { ...owner, pod: { ...owner.pod } },
        assignedAt: ctx.now,
      });
    },
    reown(ip, change) {
      const rec = known(ip);
      if (rec.phase !== "assigned" || !rec.owner) return refuse(rec, "re-own");
      return put({ ...rec, owner: { ...rec.owner, netns: change.netns, network: change.network } });
    },
    cool(ip, opts) {
      const rec = known(ip);
      if (rec.phase !== "assigned") refuse(rec, "release");
      put({
        ...without(rec, "owner", "assignedAt", "heldFor"),
        phase: "cooling",
        coolUntil: ctx.now + opts.forMs,
        ...(opts.heldFor ? { heldFor: opts.heldFor } : {}),
      });
    },
    expireCooling() {
      let n = 0;
      for (const rec of Object.values(doc.ips)) {
        if (rec.phase !== "cooling" || (rec.coolUntil ?? 0) > ctx.now) continue;
        put({ ...without(rec, "coolUntil", "heldFor"), phase: "idle", idleSince: rec.coolUntil ?? ctx.now });
        n++;
      }
      return n;
    },
    addIdle(eniId, ips) {
      if (!doc.enis[eniId]) throw new TransitionError(`cannot add IPs to ${eniId}: it is not in the pool`);
      const added: string[] = [];
      for (const ip of ips) {
        if (doc.ips[ip]) continue;
        put({ ip, eniId, phase: "idle", idleSince: ctx.now });
        added.push(ip);
      }
      if (added.length > 0) ctx.touch(eniId);
      return added;
    },
    addIdlePrefixes(eniId, prefixes) {
      if (!doc.enis[eniId])
        throw new TransitionError(`cannot add prefixes to ${eniId}: it is not in the pool`);
      const added: string[] = [];
      for (const prefix of new Set(prefixes)) {
        if (prefixRecords(doc, prefix).length > 0) continue;
        for (const ip of ipv4PrefixAddresses(prefix))
          if (!doc.ips[ip]) put({ ip, eniId, phase: "idle", idleSince: ctx.now, prefix });
        added.push(prefix);
      }
      if (added.length > 0) ctx.touch(eniId);
      return added;
    },
    takeForRelease(eniId, ips) {
      const taken: string[] = [];
      for (const ip of ips) {
        const rec = doc.ips[ip];
        if (rec?.phase !== "idle" || rec.eniId !== eniId || rec.prefix !== undefined) continue;
        put({ ...rec, phase: "releasing" });
        taken.push(ip);
      }
      if (taken.length > 0) ctx.touch(eniId);
      return taken;
    },
    takePrefixesForRelease(eniId, prefixes) {
      const taken: string[] = [];
      for (const prefix of new Set(prefixes)) {
        const recs = prefixRecords(doc, prefix);
        const whole = recs.length === ipv4PrefixAddresses(prefix).length;
        if (!whole || !recs.every((r) => r.eniId === eniId && r.phase === "idle")) continue;
        for (const rec of recs) put({ ...rec, phase: "releasing" });
        taken.push(prefix);
      }
      if (taken.length > 0) ctx.touch(eniId);
      return taken;
    },
    giveBack(ips) {
      for (const rec of releasing(ips)) {
        put({ ...rec, phase: "idle" });
        ctx.touch(rec.eniId);
      }
    },
    forget(ips) {
      for (const rec of releasing(ips)) {
        journal.remove("ips", rec.ip);
        ctx.touch(rec.eniId);
      }
    },
    pairIpv6(eniId, ipv6s) {
      const paired = new Set(Object.values(doc.ips).flatMap((r) => (r.ipv6 ? [r.ipv6] : [])));
      const free = Object.values(doc.ips)
        .filter(
          (r) =>
            r.eniId === eniId &&
            r.prefix === undefined &&
            r.ipv6 === undefined &&
            (r.phase === "idle" || r.phase === "cooling"),
        )
        .sort((a, b) => byText(a.ip, b.ip));
      const left: string[] = [];
      for (const v6 of new Set(ipv6s)) {
        if (paired.has(v6)) continue;
        const rec = free.shift();
        if (!rec) {
          left.push(v6);
          continue;
        }
        put({ ...rec, ipv6: v6 });
        ctx.touch(eniId);
      }
      return left;
    },
    unpairIpv6(ipv6s) {
      const gone = new Set(ipv6s);
      const recs = Object.values(doc.ips).filter((r) => r.ipv6 !== undefined && gone.has(r.ipv6));
      for (const rec of recs) {
        put({ ...without(rec, "ipv6"), ...(rec.owner ? { owner: without(rec.owner, "ipv6") } : {}) });
        ctx.touch(rec.eniId);
      }
      return recs;
    },
    dropIp(ip) {
      const rec = doc.ips[ip];
      if (!rec) return undefined;
      journal.remove("ips", ip);
      ctx.touch(rec.eniId);
      return rec;
    },
    dropPrefix(eniId, prefix) {
      const recs = prefixRecords(doc, prefix).filter((r) => r.eniId === eniId);
      for (const rec of recs) journal.remove("ips", rec.ip);
      if (recs.length > 0) ctx.touch(eniId);
      return recs;
    },
  };
}
