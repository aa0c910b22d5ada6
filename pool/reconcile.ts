// Restart and periodic resync: rebuild the pool's picture from the store,
// the metadata service and DescribeNetworkInterfaces. Resume or undo
// intents, adopt our IPs and IPv4 prefixes the store does not know, drop
// entries whose IP, prefix or ENI is gone (loudly, if a pod held one), and
// delete leaked ENIs. The cloud's Ipv4PrefixSets are the truth for prefixes.

import type { CloudApi } from "../cloud/api.js";
import type { MetadataClient } from "../cloud/metadata.js";
import type { Eni } from "../cloud/types.js";
import type { Logger } from "../lib/log.js";
import { netOfMeta } from "./attach.js";
import {
  type Datastore,
  type EniNet,
  type IntentRecord,
  type IpRecord,
  intentEni,
  type Transitions,
} from "./datastore/datastore.js";
import type { Executor } from "./executor.js";
import { describeError } from "./failures.js";
import { NOTHING_PENDING, type Pending } from "./in-flight.js";
import type { Pool } from "./pool.js";

export interface ReconcileDeps {
  cloud: CloudApi;
  metadata: MetadataClient;
  datastore: Datastore;
  executor: Executor;
  pool: Pick<Pool, "busyEnis" | "track" | "kick">;
  log: Logger;
  now(): number;
  instanceId: string;
  /** Tags that mark an ENI as ours (creator and cluster). */
  ownTags: Record<string, string>;
  leakGraceMs: number;
  /** Intents older than this that nobody runs are resumed by a periodic resync. */
  staleIntentMs: number;
  /** Dual stack: every ready ENI without an IPv6 gateway has it read from the metadata. */
  ipv6?: boolean;
}

export interface ReconcileReport {
  resumedIntents: number;
  adoptedEnis: string[];
  adoptedIps: string[];
  /** Prefixes the store did not know (their addresses are in adoptedIps too). */
  adoptedPrefixes: string[];
  droppedEnis: string[];
  droppedIps: string[];
  /** Prefixes the cloud no longer has (their addresses are in droppedIps too). */
  droppedPrefixes: string[];
  /** IPv6 addresses of our ENIs the pool paired with an IPv4 it had none for. */
  adoptedIpv6s: string[];
  /** IPv6 addresses the cloud no longer has, unpaired from their IPv4s (a pod's among them: in brokenAllocations). */
  droppedIpv6s: string[];
  /** IPv6 addresses on our ENIs that no IPv4 of the pool took, given back. */
  releasedIpv6s: string[];
  brokenAllocations: { ip: string; containerId: string; ifname: string; pod: string }[];
  leakedEnisDeleted: string[];
}

/** What the cloud and the metadata said of this instance's ENIs, and which ENIs the pool left alone meanwhile. */
interface CloudView {
  attached: Eni[];
  /** Gateway and CIDR of the attached ENIs the store does not know. */
  netOf: Map<string, EniNet>;
  /** The IPv6 gateway of ready ENIs the store has none for (dual stack, or the cloud gives them IPv6 addresses). */
  gateway6Of: Map<string, string>;
  untouched(eniId: string): boolean;
}

const isOurs = (eni: Eni, own: Record<string, string>): boolean =>
  eni.type === "Secondary" && Object.entries(own).every(([k, v]) => eni.tags[k] === v);

const hasIntent = (ds: Datastore, eniId: string): boolean => ds.intents().some((i) => intentEni(i) === eniId);

export async function reconcile(deps: ReconcileDeps, startup: boolean): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    resumedIntents: 0,
    adoptedEnis: [],
    adoptedIps: [],
    adoptedPrefixes: [],
    droppedEnis: [],
    droppedIps: [],
    droppedPrefixes: [],
    adoptedIpv6s: [],
    droppedIpv6s: [],
    releasedIpv6s: [],
    brokenAllocations: [],
    leakedEnisDeleted: [],
  };
  await resumeIntents(deps, startup, report);
  const view = await readCloud(deps);
  const loose = await deps.datastore.write((tx) => apply(deps.datastore, tx, view, report));
  logChanges(deps.log, report);
  await releaseLoose(deps, loose, report);
  await deleteLeaked(deps, report);
  deps.pool.kick();
  return report;
}

/** 1. Intents: at start-up all of them (awaited); later only the ones nobody runs and that have gone stale. */
async function resumeIntents(deps: ReconcileDeps, startup: boolean, report: ReconcileReport): Promise<void> {
  const { pool, log } = deps;
  const live = new Set(pool.busyEnis());
  const resumable = deps.datastore.intents().filter((i) => {
    if (startup) return true;
    const eni = intentEni(i);
    return deps.now() - i.at > deps.staleIntentMs && (eni === null || !live.has(eni));
  });
  const resumes = resumable.map((i) => {
    report.resumedIntents++;
    return pool
      .track(intentEni(i), pendingOf(i), () => deps.executor.resume(i))
      .catch((err: unknown) =>
        log.warn("intent not finished; will retry at the next resync", {
          intent: i.id,
          kind: i.kind,
          error: describeError(err),
        }),
      );
  });
  if (startup) await Promise.all(resumes);
}

/** What an intent brings when it is resumed. */
function pendingOf(i: IntentRecord): Pending {
  if (i.kind === "create") return { ips: i.ipCount, prefixes: i.prefixCount ?? 0 };
  if (i.kind !== "assign" || i.unit === "ipv6") return NOTHING_PENDING;
  return i.unit === "prefixes" ? { ips: 0, prefixes: i.count } : { ips: i.count, prefixes: 0 };
}

/** 2. The cloud's view of this instance, and the ENI generations it was read under. */
async function readCloud(deps: ReconcileDeps): Promise<CloudView> {
  const { datastore: ds, pool } = deps;
  const gens = ds.generations();
  const attached = (await deps.cloud.describeNetworkInterfaces({ instanceId: deps.instanceId })).filter((e) =>
    isOurs(e, deps.ownTags),
  );
  const macs = new Set(await deps.metadata.macs());
  const untouched = (eniId: string): boolean =>
    !pool.busyEnis().has(eniId) && (gens.get(eniId) ?? 0) === ds.generation(eniId) && !hasIntent(ds, eniId);
  const netOf = new Map<string, EniNet>();
  const gateway6Of = new Map<string, string>();
  for (const e of attached) {
    if (e.status !== "InUse" || !macs.has(e.macAddress) || !untouched(e.eniId)) continue;
    const known = ds.eni(e.eniId);
    if (!known) netOf.set(e.eniId, netOfMeta(await deps.metadata.eni(e.macAddress)));
    else if (known.phase === "ready" && !known.gateway6 && (deps.ipv6 || e.ipv6s.length > 0)) {
      const gw6 = (await deps.metadata.eni(e.macAddress)).ipv6Gateway;
      if (gw6) gateway6Of.set(e.eniId, gw6);
    }
  }
  return { attached, netOf, gateway6Of, untouched };
}

/**
 * 3. Apply, in one write, skipping any ENI the pool touched meanwhile. Returns
 * the IPv6 addresses of each ENI that no IPv4 took, to give back.
 */
function apply(
  ds: Datastore,
  tx: Transitions,
  view: CloudView,
  report: ReconcileReport,
): Map<string, string[]> {
  const loose = new Map<string, string[]>();
  const dropped = (rec: IpRecord | undefined): void => {
    if (!rec) return;
    if (rec.owner)
      report.brokenAllocations.push({
        ip: rec.ip,
        containerId: rec.owner.containerId,
        ifname: rec.owner.ifname,
        pod: `${rec.owner.pod.namespace}/${rec.owner.pod.name}`,
      });
    report.droppedIps.push(rec.ip);
  };
  const seen = new Set(view.attached.map((e) => e.eniId));
  for (const e of view.attached) {
    if (!view.untouched(e.eniId)) continue;
    const known = ds.eni(e.eniId);
    if (!known) {
      const net = view.netOf.get(e.eniId);
      if (!net) continue;
      tx.adoptEni({ eniId: e.eniId, mac: e.macAddress, vSwitchId: e.vSwitchId, primaryIp: e.primaryIp }, net);
      report.adoptedEnis.push(e.eniId);
    } else if (known.phase !== "ready") {
      continue;
    }
    const gw6 = view.gateway6Of.get(e.eniId);
    if (gw6) tx.eniGateway6(e.eniId, gw6);
    syncAddresses(ds, tx, e, report, dropped);
    const left = syncIpv6(ds, tx, e, report);
    if (left.length > 0) loose.set(e.eniId, left);
  }
  for (const e of ds.enis()) {
    if (seen.has(e.eniId) || !view.untouched(e.eniId)) continue;
    for (const rec of tx.dropEni(e.eniId)) dropped(rec);
    report.droppedEnis.push(e.eniId);
  }
  return loose;
}

/**
 * A ready ENI's IPv6 addresses as the cloud has them: one gone leaves its
 * IPv4 (and the pod that had it, loudly), a new one is paired with an IPv4
 * that has none. Those no IPv4 took.
 */
function syncIpv6(ds: Datastore, tx: Transitions, e: Eni, report: ReconcileReport): string[] {
  const cloud = new Set(e.ipv6s);
  const paired = new Set<string>();
  const gone: string[] = [];
  for (const rec of ds.ips()) {
    if (rec.eniId !== e.eniId || rec.ipv6 === undefined) continue;
    if (cloud.has(rec.ipv6)) paired.add(rec.ipv6);
    else gone.push(rec.ipv6);
  }
  for (const rec of tx.unpairIpv6(gone)) {
    report.droppedIpv6s.push(rec.ipv6 ?? "");
    if (rec.owner?.ipv6)
      report.brokenAllocations.push({
        ip: rec.owner.ipv6,
        containerId: rec.owner.containerId,
        ifname: rec.owner.ifname,
        pod: `${rec.owner.pod.namespace}/${rec.owner.pod.name}`,
      });
  }
  const fresh = e.ipv6s.filter((v6) => !paired.has(v6));
  const left = tx.pairIpv6(e.eniId, fresh);
  report.adoptedIpv6s.push(...fresh.filter((v6) => !left.includes(v6)));
  return left;
}

/** 4. IPv6 addresses of our ENIs that no IPv4 took: back to the cloud (a failure waits for the next resync). */
async function releaseLoose(
  deps: ReconcileDeps,
  loose: Map<string, string[]>,
  report: ReconcileReport,
): Promise<void> {
  for (const [eniId, ipv6s] of loose) {
    try {
      await deps.pool.track(eniId, NOTHING_PENDING, () => deps.executor.unassignIpv6(eniId, ipv6s));
      report.releasedIpv6s.push(...ipv6s);
    } catch (err) {
      deps.log.warn("could not release unpaired IPv6 addresses", { eniId, ipv6s, error: describeError(err) });
    }
  }
}

/** A ready ENI's single IPs and prefixes as the cloud has them: the new ones idle, the gone ones dropped. */
function syncAddresses(
  ds: Datastore,
  tx: Transitions,
  e: Eni,
  report: ReconcileReport,
  dropped: (rec: IpRecord | undefined) => void,
): void {
  report.adoptedIps.push(...tx.addIdle(e.eniId, e.privateIps));
  const prefixes = tx.addIdlePrefixes(e.eniId, e.ipv4Prefixes);
  report.adoptedPrefixes.push(...prefixes);
  report.adoptedIps.push(...prefixes.flatMap((p) => prefixAddressesOf(ds, e.eniId, p)));
  const cloudIps = new Set(e.privateIps);
  const cloudPrefixes = new Set(e.ipv4Prefixes);
  const gonePrefixes = new Set<string>();
  for (const rec of ds.ips()) {
    if (rec.eniId !== e.eniId) continue;
    if (rec.prefix === undefined) {
      if (!cloudIps.has(rec.ip)) dropped(tx.dropIp(rec.ip));
    } else if (!cloudPrefixes.has(rec.prefix)) gonePrefixes.add(rec.prefix);
  }
  for (const p of gonePrefixes) {
    report.droppedPrefixes.push(p);
    for (const rec of tx.dropPrefix(e.eniId, p)) dropped(rec);
  }
}

/** The addresses of the ENI's prefix, as the pool now tracks them. */
const prefixAddressesOf = (ds: Datastore, eniId: string, prefix: string): string[] =>
  ds
    .ips()
    .filter((r) => r.eniId === eniId && r.prefix === prefix)
    .map((r) => r.ip);

function logChanges(log: Logger, report: ReconcileReport): void {
  for (const b of report.brokenAllocations)
    log.error("allocation lost: its IP is no longer on our ENI in the cloud", { ...b });
  if (report.adoptedEnis.length || report.adoptedIps.length)
    log.warn("adopted cloud resources the store did not know", {
      enis: report.adoptedEnis,
      ips: report.adoptedIps,
      prefixes: report.adoptedPrefixes,
    });
  if (report.droppedEnis.length || report.droppedIps.length || report.droppedIpv6s.length)
    log.warn("dropped store entries the cloud no longer has", {
      enis: report.droppedEnis,
      ips: report.droppedIps,
      prefixes: report.droppedPrefixes,
      ipv6s: report.droppedIpv6s,
    });
  if (report.adoptedIpv6s.length)
    log.info("paired IPv6 addresses of our ENIs with IPv4s", { ipv6s: report.adoptedIpv6s });
}

/** 5. Leaked ENIs: ours (tags and cluster), detached, older than the grace period, unknown to the pool. */
async function deleteLeaked(deps: ReconcileDeps, report: ReconcileReport): Promise<void> {
  const { cloud, datastore: ds, log } = deps;
  const loose = await cloud.describeNetworkInterfaces({ tags: deps.ownTags, status: "Available" });
  for (const e of loose) {
    if (!isOurs(e, deps.ownTags) || ds.eni(e.eniId) || hasIntent(ds, e.eniId)) continue;
    const created = Date.parse(e.creationTime);
    if (!Number.isFinite(created) || deps.now() - created < deps.leakGraceMs) continue;
    try {
      await deps.pool.track(e.eniId, NOTHING_PENDING, () => cloud.deleteNetworkInterface(e.eniId));
      report.leakedEnisDeleted.push(e.eniId);
      log.warn("deleted a leaked ENI", { eniId: e.eniId, created: e.creationTime });
    } catch (err) {
      log.warn("could not delete a leaked ENI", { eniId: e.eniId, error: describeError(err) });
    }
  }
}
