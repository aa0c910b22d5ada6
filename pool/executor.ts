// Runs the planner's actions against the cloud. Every call is written ahead
// as an intent (with its ClientToken) before it is sent, and every result
// goes to the store, so a crash at any instant can be resumed or undone.
// Half-finished work is undone: an ENI that failed to attach is deleted.

import { randomUUID } from "node:crypto";
import type { CloudApi } from "../cloud/api.js";
import { CloudError, isTreated } from "../cloud/errors.js";
import type { MetadataClient } from "../cloud/metadata.js";
import type { Eni } from "../cloud/types.js";
import { delayFor, SCHEDULES } from "../lib/backoff.js";
import type { Logger } from "../lib/log.js";
import type { Intent, Store, StoreDoc, StoredEni } from "./store.js";

/** While an ENI attaches: how often the (local) metadata is read, and the cloud asked regardless. */
export const ATTACH_METADATA_POLL_MS = 100;
export const ATTACH_DESCRIBE_MS = 2000;

export interface ExecutorConfig {
  attachTimeoutMs: number;
  vSwitchBlockMs: number;
  eniLimitBackoffMs: number;
  maxConcurrentAttaches: number;
}

export interface ExecutorDeps {
  cloud: CloudApi;
  metadata: MetadataClient;
  store: Store;
  log: Logger;
  now(): number;
  sleep(ms: number): Promise<void>;
  instanceId: string;
  securityGroupIds: string[];
  /** Every ENI we create carries these (ours and the user's). */
  tags: Record<string, string>;
  config: ExecutorConfig;
  /** Told of every cloud failure that keeps the pool from growing (for Events and the node condition). */
  onFailure?(f: CloudFailure): void;
}

/** Why the pool could not grow: the reasons are those of the Node's Events. */
export type CloudFailureReason =
  | "CreateENIFailed"
  | "AttachENIFailed"
  | "AssignIPFailed"
  | "VSwitchIPExhausted"
  | "ENIQuotaExceeded";

export interface CloudFailure {
  reason: CloudFailureReason;
  /** The cloud's error code, or "" for a failure of ours (an attach that timed out). */
  code: string;
  message: string;
}

export interface Executor {
  create(vSwitchId: string, ipCount: number): Promise<void>;
  assign(eniId: string, count: number): Promise<void>;
  unassign(eniId: string, ips: string[]): Promise<void>;
  remove(eniId: string): Promise<void>;
  /** Finish (or undo) an intent found in the store after a restart. */
  resume(intent: Intent): Promise<void>;
}

/** A counting semaphore: at most n holders at once. */
function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let free = n;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (free > 0) free--;
    else await new Promise<void>((r) => queue.push(r));
    try {
      return await fn();
    } finally {
      const next = queue.shift();
      if (next) next();
      else free++;
    }
  };
}

export function addIdle(doc: StoreDoc, eniId: string, ips: string[], now: number): void {
  for (const ip of ips) {
    // Never overwrite: an IP the pool already tracks may be assigned to a pod.
    if (!doc.ips[ip]) doc.ips[ip] = { ip, eniId, phase: "idle", idleSince: now };
  }
}

function dropEni(doc: StoreDoc, eniId: string): void {
  delete doc.enis[eniId];
  for (const [ip, rec] of Object.entries(doc.ips)) if (rec.eniId === eniId) delete doc.ips[ip];
}

export function createExecutor(deps: ExecutorDeps): Executor {
  const { cloud, store, log, config } = deps;
  const attachSlot = semaphore(config.maxConcurrentAttaches);

  const writeIntent = (intent: Intent, extra?: (d: StoreDoc) => void): Promise<void> =>
    store.update((d) => {
      d.intents[intent.id] = intent;
      extra?.(d);
    });

  const clearIntent = (id: string, extra?: (d: StoreDoc) => void): Promise<void> =>
    store.update((d) => {
      delete d.intents[id];
      extra?.(d);
    });

  /** Report a failure with the most precise reason the error allows. */
  const report = (fallback: CloudFailureReason, err: unknown): void => {
    if (!deps.onFailure) return;
    const reason: CloudFailureReason = isTreated(err, "vSwitchExhausted")
      ? "VSwitchIPExhausted"
      : isTreated(err, "eniLimit")
        ? "ENIQuotaExceeded"
        : fallback;
    const code = err instanceof CloudError ? err.code : "";
    const message = err instanceof Error ? err.message : String(err);
    deps.onFailure({ reason, code, message: message.slice(0, 500) });
  };

  const noteCloudError = async (err: unknown, vSwitchId?: string): Promise<void> => {
    if (vSwitchId && isTreated(err, "vSwitchExhausted")) {
      log.warn("vSwitch has no free addresses; blocking it", {
        vSwitchId,
        until: deps.now() + config.vSwitchBlockMs,
      });
      await store.update((d) => {
        d.blockedVSwitches[vSwitchId] = deps.now() + config.vSwitchBlockMs;
      });
    }
    if (isTreated(err, "eniLimit")) {
      log.warn("instance is at its ENI limit; backing off creates", { ms: config.eniLimitBackoffMs });
      await store.update((d) => {
        d.createBackoffUntil = deps.now() + config.eniLimitBackoffMs;
      });
    }
  };

  /**
   * Consecutive failed creates or attaches. Each one pauses creates for twice
   * as long as the last (from 1 s, at most eniLimitBackoffMs), so a node whose
   * attaches keep failing does not spin create → attach → delete.
   */
  let createFailures = 0;
  const backOffCreates = async (): Promise<void> => {
    createFailures++;
    const ms = delayFor({ ...SCHEDULES.createRetry, capMs: config.eniLimitBackoffMs }, createFailures);
    await store.update((d) => {
      d.createBackoffUntil = Math.max(d.createBackoffUntil, deps.now() + ms);
    });
  };

  /**
   * Wait until the instance's metadata lists the MAC: the ENI is attached
   * here (as the AWS VPC CNI waits on IMDS). The metadata is local and free,
   * so it is read every ATTACH_METADATA_POLL_MS; the cloud is asked every
   * ATTACH_DESCRIBE_MS, to learn of an attach that failed.
   */
  const waitAttached = async (eni: StoredEni): Promise<{ gateway: string; cidr: string }> => {
    const deadline = deps.now() + config.attachTimeoutMs;
    let described = deps.now();
    // undefined: not asked yet or the Describe call failed; null: the cloud does not list the ENI.
    let cloudView: Eni | null | undefined;
    for (;;) {
      const polled = deps.now();
      const listed = (await deps.metadata.macs().catch(() => [] as string[])).includes(eni.mac);
      if (listed) {
        const meta = await deps.metadata.eni(eni.mac);
        return { gateway: meta.gateway, cidr: meta.vSwitchCidr };
      }
      if (deps.now() - described >= ATTACH_DESCRIBE_MS) {
        described = deps.now();
        cloudView = await cloud.describeNetworkInterfaces({ eniIds: [eni.eniId] }).then(
          ([e]) => e ?? null,
          (e: unknown) => {
            log.debug("describe while waiting for attach failed", { eniId: eni.eniId, error: String(e) });
            return undefined;
          },
        );
        if (cloudView?.status === "Available")
          throw new Error(`${eni.eniId} is Available again: the attachment failed`);
      }
      if (deps.now() > deadline) {
        const why =
          cloudView === undefined
            ? "DescribeNetworkInterfaces failed or was not answered"
            : cloudView === null
              ? "the cloud does not list it"
              : `it is ${cloudView.status} and the metadata does not list its MAC`;
        throw new Error(`${eni.eniId} not attached within ${config.attachTimeoutMs} ms: ${why}`);
      }
      await deps.sleep(Math.max(0, ATTACH_METADATA_POLL_MS - (deps.now() - polled)));
    }
  };

  /** Detach (if attached), wait until Available, delete. Tolerates an ENI already gone. */
  const destroy = async (eniId: string): Promise<void> => {
    const deadline = deps.now() + config.attachTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const [e] = await cloud.describeNetworkInterfaces({ eniIds: [eniId] });
      if (!e) return;
      if (e.status === "Available") {
        await cloud.deleteNetworkInterface(eniId);
        return;
      }
      if (e.status === "InUse") await cloud.detachNetworkInterface(eniId, e.instanceId || deps.instanceId);
      if (deps.now() > deadline)
        throw new Error(`${eniId} still ${e.status} after ${config.attachTimeoutMs} ms`);
      await deps.sleep(delayFor(SCHEDULES.detachPoll, attempt));
    }
  };

  /** From a created (Available) ENI to a ready one, or undone. */
  const attachCreated = async (intentId: string, eni: Eni): Promise<void> => {
    const stored: StoredEni = {
      eniId: eni.eniId,
      mac: eni.macAddress,
      vSwitchId: eni.vSwitchId,
      phase: "attaching",
      primaryIp: eni.primaryIp,
      gateway: "",
      cidr: "",
      createdAt: deps.now(),
    };
    await store.update((d) => {
      delete d.intents[intentId];
      d.intents[`attach-${eni.eniId}`] = {
        id: `attach-${eni.eniId}`,
        kind: "attach",
        eniId: eni.eniId,
        at: deps.now(),
      };
      d.enis[eni.eniId] = stored;
      addIdle(d, eni.eniId, eni.privateIps, deps.now());
    });
    await attachAndWait(stored, true);
  };

  /**
   * Attach and wait until ready. `justCreated`: the Create answer said
   * Available a moment ago, so the Describe that decides whether to attach
   * (after a restart, an attach may already be under way) is skipped.
   */
  const attachAndWait = async (stored: StoredEni, justCreated = false): Promise<void> => {
    const intentId = `attach-${stored.eniId}`;
    try {
      const net = await attachSlot(async () => {
        const attach = (): Promise<void> => cloud.attachNetworkInterface(stored.eniId, deps.instanceId);
        if (justCreated) await attach();
        else {
          const [now] = await cloud.describeNetworkInterfaces({ eniIds: [stored.eniId] });
          if (!now) throw new Error(`${stored.eniId} does not exist`);
          if (now.status === "Available") await attach();
          else if (now.instanceId !== deps.instanceId)
            throw new Error(`${stored.eniId} is ${now.status} elsewhere`);
        }
        return waitAttached(stored);
      });
      await clearIntent(intentId, (d) => {
        const e = d.enis[stored.eniId];
        if (!e) return;
        e.phase = "ready";
        e.gateway = net.gateway;
        e.cidr = net.cidr;
        const t = deps.now();
        for (const rec of Object.values(d.ips))
          if (rec.eniId === stored.eniId && rec.phase === "idle") rec.idleSince = t;
      });
      createFailures = 0;
      log.info("ENI ready", { eniId: stored.eniId, mac: stored.mac, gateway: net.gateway });
    } catch (err) {
      report("AttachENIFailed", err);
      await noteCloudError(err);
      await backOffCreates();
      log.warn("attach failed; deleting the ENI", { eniId: stored.eniId, error: describeError(err) });
      await store.update((d) => {
        const e = d.enis[stored.eniId];
        if (e) e.phase = "deleting";
        delete d.intents[intentId];
        d.intents[`delete-${stored.eniId}`] = {
          id: `delete-${stored.eniId}`,
          kind: "delete",
          eniId: stored.eniId,
          at: deps.now(),
        };
      });
      await finishDelete(stored.eniId);
    }
  };

  const finishDelete = async (eniId: string): Promise<void> => {
    await destroy(eniId);
    await clearIntent(`delete-${eniId}`, (d) => dropEni(d, eniId));
    log.info("ENI deleted", { eniId });
  };

  const create = async (vSwitchId: string, ipCount: number): Promise<void> => {
    const intent: Intent = {
      id: `create-${randomUUID()}`,
      kind: "create",
      clientToken: randomUUID(),
      vSwitchId,
      ipCount,
      at: deps.now(),
    };
    await writeIntent(intent);
    await runCreate(intent);
  };

  const runCreate = async (intent: Extract<Intent, { kind: "create" }>): Promise<void> => {
    let eni: Eni;
    try {
      eni = await cloud.createNetworkInterface({
        vSwitchId: intent.vSwitchId,
        securityGroupIds: deps.securityGroupIds,
        tags: deps.tags,
        secondaryIpCount: intent.ipCount - 1,
        clientToken: intent.clientToken,
        description: "created by eniway",
      });
    } catch (err) {
      report("CreateENIFailed", err);
      await noteCloudError(err, intent.vSwitchId);
      // An exhausted vSwitch is blocked instead: the others may still be used at once.
      if (!isTreated(err, "vSwitchExhausted")) await backOffCreates();
      // A definite answer means nothing was created; otherwise keep the intent for the next resync.
      if (err instanceof CloudError && !err.retryable) await clearIntent(intent.id);
      throw err;
    }
    log.info("ENI created", { eniId: eni.eniId, vSwitchId: eni.vSwitchId, ips: eni.privateIps.length });
    await attachCreated(intent.id, eni);
  };

  const assign = async (eniId: string, count: number): Promise<void> => {
    const intent: Intent = {
      id: `assign-${randomUUID()}`,
      kind: "assign",
      clientToken: randomUUID(),
      eniId,
      count,
      at: deps.now(),
    };
    await writeIntent(intent);
    await runAssign(intent);
  };

  const runAssign = async (intent: Extract<Intent, { kind: "assign" }>): Promise<void> => {
    try {
      const ips = await cloud.assignPrivateIpAddresses({
        eniId: intent.eniId,
        count: intent.count,
        clientToken: intent.clientToken,
      });
      await clearIntent(intent.id, (d) => {
        if (d.enis[intent.eniId]) addIdle(d, intent.eniId, ips, deps.now());
      });
      log.info("IPs assigned", { eniId: intent.eniId, ips });
    } catch (err) {
      report("AssignIPFailed", err);
      await noteCloudError(err, store.data.enis[intent.eniId]?.vSwitchId);
      if (err instanceof CloudError && !err.retryable) await clearIntent(intent.id);
      throw err;
    }
  };

  const unassign = async (eniId: string, ips: string[]): Promise<void> => {
    const intent: Intent = { id: `unassign-${randomUUID()}`, kind: "unassign", eniId, ips, at: deps.now() };
    // Only idle IPs are released; they leave the allocatable set in the same write.
    const taken: string[] = [];
    await writeIntent(intent, (d) => {
      for (const ip of ips) {
        const rec = d.ips[ip];
        if (rec?.phase === "idle" && rec.eniId === eniId) {
          rec.phase = "releasing";
          taken.push(ip);
        }
      }
      intent.ips = taken;
    });
    await runUnassign(intent);
  };

  const runUnassign = async (intent: Extract<Intent, { kind: "unassign" }>): Promise<void> => {
    try {
      if (intent.ips.length > 0) await cloud.unassignPrivateIpAddresses(intent.eniId, intent.ips);
      await clearIntent(intent.id, (d) => {
        for (const ip of intent.ips) if (d.ips[ip]?.phase === "releasing") delete d.ips[ip];
      });
      log.info("IPs released to the cloud", { eniId: intent.eniId, ips: intent.ips });
    } catch (err) {
      // Not released: the IPs go back to idle.
      await clearIntent(intent.id, (d) => {
        for (const ip of intent.ips) {
          const rec = d.ips[ip];
          if (rec?.phase === "releasing") rec.phase = "idle";
        }
      });
      throw err;
    }
  };

  const remove = async (eniId: string): Promise<void> => {
    let ok = true;
    await writeIntent({ id: `delete-${eniId}`, kind: "delete", eniId, at: deps.now() }, (d) => {
      const e = d.enis[eniId];
      const mine = Object.values(d.ips).filter((r) => r.eniId === eniId);
      ok = !!e && mine.every((r) => r.phase === "idle");
      if (!ok) {
        delete d.intents[`delete-${eniId}`];
        return;
      }
      e!.phase = "deleting";
      for (const r of mine) r.phase = "releasing";
    });
    if (!ok) return;
    await finishDelete(eniId);
  };

  const resume = async (intent: Intent): Promise<void> => {
    log.info("resuming intent", { intent: intent.id, kind: intent.kind });
    switch (intent.kind) {
      case "create":
        return runCreate(intent);
      case "attach": {
        const e = store.data.enis[intent.eniId];
        if (!e) return clearIntent(intent.id);
        return attachAndWait(e);
      }
      case "assign":
        if (!store.data.enis[intent.eniId]) return clearIntent(intent.id);
        return runAssign(intent);
      case "unassign":
        return runUnassign(intent);
      case "delete":
        return finishDelete(intent.eniId);
    }
  };

  return { create, assign, unassign, remove, resume };
}

export function describeError(err: unknown): Record<string, unknown> | string {
  if (err instanceof CloudError) return err.toJSON() as unknown as Record<string, unknown>;
  return err instanceof Error ? err.message : String(err);
}
