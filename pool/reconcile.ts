// Restart and periodic resync: rebuild the pool's picture from the store,
// the metadata service and DescribeNetworkInterfaces. Resume or undo
// intents, adopt our IPs the store does not know, drop entries whose IP or
// ENI is gone (loudly, if a pod held one), and delete leaked ENIs.

import type { CloudApi } from "../cloud/api.js";
import type { MetadataClient } from "../cloud/metadata.js";
import type { Eni } from "../cloud/types.js";
import type { Logger } from "../lib/log.js";
import { addIdle, describeError, type Executor } from "./executor.js";
import type { Pool } from "./pool.js";
import type { Intent, Store } from "./store.js";

export interface ReconcileDeps {
  cloud: CloudApi;
  metadata: MetadataClient;
  store: Store;
  executor: Executor;
  pool: Pool;
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
  droppedEnis: string[];
  droppedIps: string[];
  brokenAllocations: { ip: string; containerId: string; ifname: string; pod: string }[];
  leakedEnisDeleted: string[];
}

const isOurs = (eni: Eni, own: Record<string, string>): boolean =>
  eni.type === "Secondary" && Object.entries(own).every(([k, v]) => eni.tags[k] === v);

function intentEni(i: Intent): string | null {
  return i.kind === "create" ? null : i.eniId;
}

export async function reconcile(deps: ReconcileDeps, startup: boolean): Promise<ReconcileReport> {
  const { cloud, store, pool, log } = deps;
  const report: ReconcileReport = {
    resumedIntents: 0,
    adoptedEnis: [],
    adoptedIps: [],
    droppedEnis: [],
    droppedIps: [],
    brokenAllocations: [],
    leakedEnisDeleted: [],
  };

  // 1. Intents: at start-up all of them; later only the ones nobody runs and that have gone stale.
  const live = new Set(pool.busyEnis());
  const resumable = Object.values(store.data.intents).filter((i) => {
    if (startup) return true;
    const eni = intentEni(i);
    return deps.now() - i.at > deps.staleIntentMs && (eni === null || !live.has(eni));
  });
  const resumes = resumable.map((i) => {
    report.resumedIntents++;
    const n = i.kind === "create" ? i.ipCount : i.kind === "assign" ? i.count : 0;
    return pool
      .track(intentEni(i), n, () => deps.executor.resume(i))
      .catch((err: unknown) =>
        log.warn("intent not finished; will retry at the next resync", {
          intent: i.id,
          kind: i.kind,
          error: describeError(err),
        }),
      );
  });
  if (startup) await Promise.all(resumes);

  // 2. The cloud's view of this instance, and the generations it was read under.
  const gens = new Map(Object.keys(store.data.enis).map((id) => [id, pool.generation(id)]));
  const attached = (await cloud.describeNetworkInterfaces({ instanceId: deps.instanceId })).filter((e) =>
    isOurs(e, deps.ownTags),
  );
  const macs = new Set(await deps.metadata.macs());
  const untouched = (eniId: string): boolean =>
    !pool.busyEnis().has(eniId) &&
    (gens.get(eniId) ?? 0) === pool.generation(eniId) &&
    !Object.values(store.data.intents).some((i) => intentEni(i) === eniId);

  const seen = new Set<string>();
  const gatewayOf = new Map<string, { gateway: string; cidr: string }>();
  for (const e of attached) {
    seen.add(e.eniId);
    if (e.status !== "InUse" || !macs.has(e.macAddress) || store.data.enis[e.eniId]) continue;
    if (!untouched(e.eniId)) continue;
    const meta = await deps.metadata.eni(e.macAddress);
    gatewayOf.set(e.eniId, { gateway: meta.gateway, cidr: meta.vSwitchCidr });
  }

  // 3. Apply, skipping any ENI the pool touched meanwhile.
  await store.update((d) => {
    const t = deps.now();
    for (const e of attached) {
      if (!untouched(e.eniId)) continue;
      const known = d.enis[e.eniId];
      if (!known) {
        const net = gatewayOf.get(e.eniId);
        if (!net) continue;
        d.enis[e.eniId] = {
          eniId: e.eniId,
          mac: e.macAddress,
          vSwitchId: e.vSwitchId,
          phase: "ready",
          primaryIp: e.primaryIp,
          gateway: net.gateway,
          cidr: net.cidr,
          createdAt: t,
        };
        report.adoptedEnis.push(e.eniId);
      } else if (known.phase !== "ready") {
        continue;
      }
      const cloudIps = new Set(e.privateIps);
      const before = new Set(Object.keys(d.ips));
      addIdle(d, e.eniId, e.privateIps, t);
      for (const ip of e.privateIps) if (!before.has(ip)) report.adoptedIps.push(ip);
      for (const rec of Object.values(d.ips)) {
        if (rec.eniId !== e.eniId || cloudIps.has(rec.ip)) continue;
        dropIp(rec.ip);
      }
    }
    for (const e of Object.values(d.enis)) {
      if (seen.has(e.eniId) || !untouched(e.eniId)) continue;
      for (const rec of Object.values(d.ips)) if (rec.eniId === e.eniId) dropIp(rec.ip);
      delete d.enis[e.eniId];
      report.droppedEnis.push(e.eniId);
    }

    function dropIp(ip: string): void {
      const rec = d.ips[ip]!;
      if (rec.owner) {
        report.brokenAllocations.push({
          ip,
          containerId: rec.owner.containerId,
          ifname: rec.owner.ifname,
          pod: `${rec.owner.pod.namespace}/${rec.owner.pod.name}`,
        });
      }
      delete d.ips[ip];
      report.droppedIps.push(ip);
    }
  });
  for (const b of report.brokenAllocations)
    log.error("allocation lost: its IP is no longer on our ENI in the cloud", { ...b });
  if (report.adoptedEnis.length || report.adoptedIps.length)
    log.warn("adopted cloud resources the store did not know", {
      enis: report.adoptedEnis,
      ips: report.adoptedIps,
    });
  if (report.droppedEnis.length || report.droppedIps.length)
    log.warn("dropped store entries the cloud no longer has", {
      enis: report.droppedEnis,
      ips: report.droppedIps,
    });

  // 4. Leaked ENIs: ours (tags and cluster), detached, older than the grace period, unknown to the pool.
  const loose = await cloud.describeNetworkInterfaces({ tags: deps.ownTags, status: "Available" });
  for (const e of loose) {
    if (!isOurs(e, deps.ownTags) || store.data.enis[e.eniId]) continue;
    if (Object.values(store.data.intents).some((i) => intentEni(i) === e.eniId)) continue;
    const created = Date.parse(e.creationTime);
    if (!Number.isFinite(created) || deps.now() - created < deps.leakGraceMs) continue;
    try {
      await pool.track(e.eniId, 0, () => cloud.deleteNetworkInterface(e.eniId));
      report.leakedEnisDeleted.push(e.eniId);
      log.warn("deleted a leaked ENI", { eniId: e.eniId, created: e.creationTime });
    } catch (err) {
      log.warn("could not delete a leaked ENI", { eniId: e.eniId, error: describeError(err) });
    }
  }
  pool.kick();
  return report;
}
