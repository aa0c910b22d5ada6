// Attaching an ENI to this instance and waiting until it is usable, and
// deleting one (detached first); an attach that fails is undone by deleting
// its ENI. Both run as intents, so a crash at any instant can be resumed.

import type { CloudApi } from "../cloud/api.js";
import type { EniMetadata, MetadataClient } from "../cloud/metadata.js";
import type { Eni } from "../cloud/types.js";
import { delayFor, SCHEDULES } from "../lib/backoff.js";
import type { Logger } from "../lib/log.js";
import type { Datastore, EniNet, EniRecord } from "./datastore/datastore.js";
import { describeError, type Setbacks } from "./failures.js";
import type { IntentCall, IntentRunner } from "./intent-runner.js";
import type { Intent } from "./store.js";

/** While an ENI attaches: how often the (local) metadata is read, and the cloud asked regardless. */
export const ATTACH_METADATA_POLL_MS = 100;
export const ATTACH_DESCRIBE_MS = 2000;

export interface AttachDeps {
  ds: Datastore;
  cloud: CloudApi;
  metadata: MetadataClient;
  log: Logger;
  now(): number;
  sleep(ms: number): Promise<void>;
  instanceId: string;
  config: { attachTimeoutMs: number; maxConcurrentAttaches: number };
}

/** The ENI to attach: its id, and the MAC the metadata will list. */
export type EniRef = Pick<EniRecord, "eniId" | "mac">;

export interface Attacher {
  /**
   * Attach and wait until ready, or delete the ENI. `justCreated`: the
   * Create answer said Available a moment ago, so the Describe that decides
   * whether to attach (after a restart, an attach may be under way) is skipped.
   */
  attachAndWait(eni: EniRef, justCreated?: boolean): Promise<void>;
  /** Delete a ready ENI whose IPs are all idle; nothing when it is not (any more). */
  remove(eniId: string): Promise<void>;
  /** Run the ENI's delete intent (in the store already) to its end. */
  finishDelete(eniId: string): Promise<void>;
}

export const attachIntent = (eniId: string, at: number): Intent => ({
  id: `attach-${eniId}`,
  kind: "attach",
  eniId,
  at,
});

const deleteIntent = (eniId: string, at: number): Intent => ({
  id: `delete-${eniId}`,
  kind: "delete",
  eniId,
  at,
});

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

/**
 * Wait until the instance's metadata lists the MAC: the ENI is attached
 * here (as the AWS VPC CNI waits on IMDS). The metadata is local and free,
 * so it is read every ATTACH_METADATA_POLL_MS; the cloud is asked every
 * ATTACH_DESCRIBE_MS, to learn of an attach that failed.
 */
/** What the pool keeps of an ENI's metadata: its gateways and its vSwitch's CIDR. */
export const netOfMeta = (meta: EniMetadata): EniNet => ({
  gateway: meta.gateway,
  cidr: meta.vSwitchCidr,
  ...(meta.ipv6Gateway ? { gateway6: meta.ipv6Gateway } : {}),
});

async function waitAttached(deps: AttachDeps, eni: EniRef): Promise<EniNet> {
  const { attachTimeoutMs } = deps.config;
  const deadline = deps.now() + attachTimeoutMs;
  let described = deps.now();
  // undefined: not asked yet or the Describe call failed; null: the cloud does not list the ENI.
  let cloudView: Eni | null | undefined;
  for (;;) {
    const polled = deps.now();
    const listed = (await deps.metadata.macs().catch(() => [] as string[])).includes(eni.mac);
    if (listed) {
      const meta = await deps.metadata.eni(eni.mac);
      return netOfMeta(meta);
    }
    if (deps.now() - described >= ATTACH_DESCRIBE_MS) {
      described = deps.now();
      cloudView = await deps.cloud.describeNetworkInterfaces({ eniIds: [eni.eniId] }).then(
        ([e]) => e ?? null,
        (e: unknown) => {
          deps.log.debug("describe while waiting for attach failed", { eniId: eni.eniId, error: String(e) });
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
      throw new Error(`${eni.eniId} not attached within ${attachTimeoutMs} ms: ${why}`);
    }
    await deps.sleep(Math.max(0, ATTACH_METADATA_POLL_MS - (deps.now() - polled)));
  }
}

/** Detach (if attached), wait until Available, delete. Tolerates an ENI already gone. */
async function destroy(deps: AttachDeps, eniId: string): Promise<void> {
  const { cloud, config } = deps;
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
}

/** Attach the ENI, unless (after a restart) it is attached here already or on its way. */
async function attach(deps: AttachDeps, eni: EniRef, justCreated: boolean): Promise<void> {
  const send = (): Promise<void> => deps.cloud.attachNetworkInterface(eni.eniId, deps.instanceId);
  if (justCreated) return send();
  const [now] = await deps.cloud.describeNetworkInterfaces({ eniIds: [eni.eniId] });
  if (!now) throw new Error(`${eni.eniId} does not exist`);
  if (now.status === "Available") return send();
  if (now.instanceId !== deps.instanceId) throw new Error(`${eni.eniId} is ${now.status} elsewhere`);
}

/** Detach and delete the ENI; once it is gone, so is it from the pool, with its IPs. */
const deleteCall = (deps: AttachDeps, eniId: string): IntentCall<void> => ({
  intent: deleteIntent(eniId, deps.now()),
  call: () => destroy(deps, eniId),
  done: (tx) => {
    tx.dropEni(eniId);
  },
  // Not deleted yet: the intent stays, and the next resync tries again.
  failed: async () => "keep",
});

export function createAttacher(deps: AttachDeps, runner: IntentRunner, setbacks: Setbacks): Attacher {
  const { ds, log } = deps;
  const attachSlot = semaphore(deps.config.maxConcurrentAttaches);

  const finishDelete = async (eniId: string): Promise<void> => {
    await runner.run(deleteCall(deps, eniId));
    log.info("ENI deleted", { eniId });
  };

  const remove = async (eniId: string): Promise<void> => {
    if (!ds.deletable(eniId)) return;
    await runner.start((tx) => {
      tx.eniDeleting(eniId);
      return deleteCall(deps, eniId);
    });
    log.info("ENI deleted", { eniId });
  };

  const attachAndWait = async (eni: EniRef, justCreated = false): Promise<void> => {
    // The error of a failed attach, once its intent has become the delete intent.
    let undoing = null as { err: unknown } | null;
    const attachCall: IntentCall<EniNet> = {
      intent: attachIntent(eni.eniId, deps.now()),
      call: () =>
        attachSlot(async () => {
          await attach(deps, eni, justCreated);
          return waitAttached(deps, eni);
        }),
      done: (tx, net) => tx.eniReady(eni.eniId, net),
      failed: async (err) => {
        setbacks.report("AttachENIFailed", err);
        await setbacks.note(err);
        await setbacks.backOffCreates();
        log.warn("attach failed; deleting the ENI", { eniId: eni.eniId, error: describeError(err) });
        return (tx) => {
          tx.attachFailed(eni.eniId);
          tx.beginIntent(deleteIntent(eni.eniId, deps.now()));
          undoing = { err };
        };
      },
    };
    try {
      const net = await runner.run(attachCall);
      setbacks.attached();
      log.info("ENI ready", { eniId: eni.eniId, mac: eni.mac, gateway: net.gateway });
    } catch (err) {
      // Anything else (a write to the store that failed) is not an attach to undo.
      if (!undoing || err !== undoing.err) throw err;
      await finishDelete(eni.eniId);
    }
  };

  return { attachAndWait, remove, finishDelete };
}
