// Restart and periodic resync: rebuild the pool's picture from the store,
// the metadata service and DescribeNetworkInterfaces. Resume or undo
// intents, adopt our IPs and IPv4 prefixes the store does not know, drop
// entries whose IP, prefix or ENI is gone (loudly, if a pod held one), and
// delete leaked ENIs. The cloud's Ipv4PrefixSets are the truth for prefixes.

import type { CloudApi } from "../cloud/api.js";
import type { MetadataClient } from "../cloud/metadata.js";
import type { Eni } from "../cloud/types.js";
import type { Logger } from "../lib/log.js";
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
  brokenAllocations: { ip: string; containerId: string; ifname: string; pod: string }[];
  leakedEnisDeleted: string[];
}

/** What the cloud and the metadata said of this instance's ENIs, and which ENIs the pool left alone meanwhile. */
interface CloudView {
  attached: Eni[];
  /** Gateway and CIDR of the attached ENIs the store does not know. */
  netOf: Map<string, EniNet>;
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
    brokenAllocations: [],
    leakedEnisDeleted: [],
  };
  await resumeIntents(deps, startup, report);
  const view = await readCloud(deps);
  await deps.datastore.write((tx) => apply(deps.datastore, tx, view, report));
  logChanges(deps.log, report);
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
  if (i.kind !== "assign") return NOTHING_PENDING;
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
  for (const e of attached) {
    if (e.status !== "InUse" || !macs.has(e.macAddress) || ds.eni(e.eniId)) continue;
    if (!untouched(e.eniId)) continue;
    const meta = await deps.metadata.eni(e.macAddress);
    netOf.set(e.eniId, { gateway: meta.gateway, cidr: meta.vSwitchCidr });
  }
  return { attached, netOf, untouched };
}

/** 3. Apply, in one write, skipping any ENI the pool touched meanwhile. */
function apply(ds: Datastore, tx: Transitions, view: CloudView, report: ReconcileReport): void {
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
    syncAddresses(ds, tx, e, report, dropped);
  }
  for (const e of ds.enis()) {
    if (seen.has(e.eniId) || !view.untouched(e.eniId)) continue;
    for (const rec of tx.dropEni(e.eniId)) dropped(rec);
    report.droppedEnis.push(e.eniId);
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
  if (report.droppedEnis.length || report.droppedIps.length)
    log.warn("dropped store entries the cloud no longer has", {
      enis: report.droppedEnis,
      ips: report.droppedIps,
      prefixes: report.droppedPrefixes,
    });
}

/** 4. Leaked ENIs: ours (tags and cluster), detached, older than the grace period, unknown to the pool. */
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
