// Runs the planner's actions against the cloud. Every call is written ahead
// as an intent (with its ClientToken) before it is sent, and every result
// goes to the datastore, so a crash at any instant can be resumed or undone.
// Half-finished work is undone: an ENI that failed to attach is deleted.

import { randomUUID } from "node:crypto";
import type { CloudApi } from "../cloud/api.js";
import { isTreated } from "../cloud/errors.js";
import type { MetadataClient } from "../cloud/metadata.js";
import type { Eni } from "../cloud/types.js";
import type { Logger } from "../lib/log.js";
import { ipv4PrefixAddresses } from "../lib/net.js";
import { attachIntent, createAttacher } from "./attach.js";
import type { Datastore, IntentRecord, Transitions } from "./datastore/datastore.js";
import { type CloudFailure, createSetbacks, isDefinite, noFreePrefix, type Setbacks } from "./failures.js";
import { createIntentRunner, type IntentCall, nothing } from "./intent-runner.js";

export type { CloudFailure, CloudFailureReason } from "./failures.js";

export interface ExecutorConfig {
  attachTimeoutMs: number;
  vSwitchBlockMs: number;
  eniLimitBackoffMs: number;
  maxConcurrentAttaches: number;
}

export interface ExecutorDeps {
  cloud: CloudApi;
  metadata: MetadataClient;
  datastore: Datastore;
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

export interface Executor {
  /** A new ENI with `ipCount` IPs (its primary included), or with its primary IP and `prefixCount` prefixes. */
  create(vSwitchId: string, ipCount: number, prefixCount?: number): Promise<void>;
  assign(eniId: string, count: number): Promise<void>;
  assignPrefixes(eniId: string, count: number): Promise<void>;
  /** Dual stack: IPv6 addresses for the ENI's IPv4s that have none, each paired with one. */
  assignIpv6(eniId: string, count: number): Promise<void>;
  /** IPv6 addresses on the ENI that no IPv4 of the pool is paired with, back to the cloud (no intent: a crash leaves them to the next resync). */
  unassignIpv6(eniId: string, ipv6s: string[]): Promise<void>;
  unassign(eniId: string, ips: string[]): Promise<void>;
  /** Give back the prefixes whose 16 addresses are all idle when the intent is written. */
  unassignPrefixes(eniId: string, prefixes: string[]): Promise<void>;
  remove(eniId: string): Promise<void>;
  /** Finish (or undo) an intent found in the store after a restart. */
  resume(intent: IntentRecord): Promise<void>;
}

type IntentOf<K extends IntentRecord["kind"]> = Extract<IntentRecord, { kind: K }>;

/** What the calls below work with. */
interface CallContext {
  deps: ExecutorDeps;
  ds: Datastore;
  setbacks: Setbacks;
}

/**
 * What a failure to get prefixes says besides the cloud's error: a vSwitch
 * without free prefixes has no reserved CIDR block left, or none at all
 * (the operator reserves them: eniway never does).
 */
function prefixFailure(err: unknown, vSwitchId: string | undefined): string | undefined {
  if (!vSwitchId || !isTreated(err, "vSwitchExhausted")) return undefined;
  return noFreePrefix(vSwitchId);
}

/** From nothing to a created (Available) ENI with its first IPs, attaching (its own intent) in the same write. */
function createCall({ deps, setbacks }: CallContext, intent: IntentOf<"create">): IntentCall<Eni> {
  const prefixCount = intent.prefixCount ?? 0;
  return {
    intent,
    call: () =>
      deps.cloud.createNetworkInterface({
        vSwitchId: intent.vSwitchId,
        securityGroupIds: deps.securityGroupIds,
        tags: deps.tags,
        secondaryIpCount: intent.ipCount - 1,
        ...(prefixCount > 0 ? { ipv4PrefixCount: prefixCount } : {}),
        clientToken: intent.clientToken,
        description: "created by eniway",
      }),
    done: (tx, eni) => {
      tx.beginIntent(attachIntent(eni.eniId, deps.now()));
      tx.eniAttaching({
        eniId: eni.eniId,
        mac: eni.macAddress,
        vSwitchId: eni.vSwitchId,
        primaryIp: eni.primaryIp,
      });
      tx.addIdle(eni.eniId, eni.privateIps);
      tx.addIdlePrefixes(eni.eniId, eni.ipv4Prefixes);
    },
    failed: async (err) => {
      setbacks.report(
        "CreateENIFailed",
        err,
        prefixCount > 0 ? prefixFailure(err, intent.vSwitchId) : undefined,
      );
      await setbacks.note(err, intent.vSwitchId);
      // An exhausted vSwitch is blocked instead: the others may still be used at once.
      if (!isTreated(err, "vSwitchExhausted")) await setbacks.backOffCreates();
      // A definite answer means nothing was created; otherwise keep the intent for the next resync.
      return isDefinite(err) ? nothing : "keep";
    },
  };
}

/**
 * More IPs, prefixes or IPv6 addresses on an ENI: idle once assigned, an
 * IPv6 paired with an IPv4 (if the ENI is still the pool's). IPv6 addresses
 * left over (an IPv4 went meanwhile) stay unpaired: the next resync gives them back.
 */
function assignCall({ deps, ds, setbacks }: CallContext, intent: IntentOf<"assign">): IntentCall<string[]> {
  const { eniId, count, clientToken } = intent;
  const prefixes = intent.unit === "prefixes";
  const req = { eniId, count, clientToken };
  return {
    intent,
    call: () =>
      intent.unit === "ipv6"
        ? deps.cloud.assignIpv6Addresses(req)
        : prefixes
          ? deps.cloud.assignIpv4Prefixes(req)
          : deps.cloud.assignPrivateIpAddresses(req),
    done: (tx, items) => {
      if (!ds.eni(eniId)) return;
      if (intent.unit === "ipv6") tx.pairIpv6(eniId, items);
      else if (prefixes) tx.addIdlePrefixes(eniId, items);
      else tx.addIdle(eniId, items);
    },
    failed: async (err) => {
      const vSwitchId = ds.eni(eniId)?.vSwitchId;
      setbacks.report("AssignIPFailed", err, prefixes ? prefixFailure(err, vSwitchId) : undefined);
      await setbacks.note(err, vSwitchId);
      return isDefinite(err) ? nothing : "keep";
    },
  };
}

/**
 * IPs, or prefixes, back to the cloud: those the intent took from the idle
 * ones when it was written (`ips`: the IPs, or the prefixes' addresses),
 * which the call resolves to, their paired IPv6 addresses first. Not
 * released: they go back to idle (without their IPv6 if that went).
 */
function unassignCall({ deps }: CallContext, intent: IntentOf<"unassign">): IntentCall<readonly string[]> {
  const prefixes = intent.prefixes ?? [];
  const ipv6s = intent.ipv6s ?? [];
  // The IPv6 addresses are gone, or may be (their call was sent and its answer is not definite).
  let ipv6Sent = false;
  let ipv6Gone = false;
  return {
    intent,
    call: async () => {
      ipv6Sent = true;
      if (ipv6s.length > 0) await deps.cloud.unassignIpv6Addresses(intent.eniId, [...ipv6s]);
      ipv6Gone = true;
      if (prefixes.length > 0) await deps.cloud.unassignIpv4Prefixes(intent.eniId, [...prefixes]);
      else if (intent.ips.length > 0)
        await deps.cloud.unassignPrivateIpAddresses(intent.eniId, [...intent.ips]);
      return prefixes.length > 0 ? prefixes : intent.ips;
    },
    done: (tx) => tx.forget(intent.ips),
    failed: async (err) => (tx) => {
      // An IPv4 goes back without an IPv6 that may be gone; the pool pairs it anew.
      if (ipv6Gone || (ipv6Sent && !isDefinite(err))) tx.unpairIpv6(ipv6s);
      tx.giveBack(intent.ips);
    },
  };
}

const newId = (kind: IntentRecord["kind"]): string => `${kind}-${randomUUID()}`;

export function createExecutor(deps: ExecutorDeps): Executor {
  const { datastore: ds, log } = deps;
  const runner = createIntentRunner(ds);
  const setbacks = createSetbacks({ ...deps, ds });
  const attacher = createAttacher({ ...deps, ds }, runner, setbacks);
  const ctx: CallContext = { deps, ds, setbacks };

  const created = async (eni: Eni): Promise<void> => {
    log.info("ENI created", {
      eniId: eni.eniId,
      vSwitchId: eni.vSwitchId,
      ips: eni.privateIps.length,
      ...(eni.ipv4Prefixes.length > 0 ? { prefixes: eni.ipv4Prefixes } : {}),
    });
    await attacher.attachAndWait({ eniId: eni.eniId, mac: eni.macAddress }, true);
  };
  const assigned = (eniId: string, ips: string[], unit?: "prefixes" | "ipv6"): void =>
    log.info(`${unit === "prefixes" ? "prefixes" : unit === "ipv6" ? "IPv6 addresses" : "IPs"} assigned`, {
      eniId,
      [unit === "ipv6" ? "ipv6s" : (unit ?? "ips")]: ips,
    });
  const released = (intent: IntentOf<"unassign">, items: readonly string[]): void =>
    log.info(intent.prefixes?.length ? "prefixes released to the cloud" : "IPs released to the cloud", {
      eniId: intent.eniId,
      [intent.prefixes?.length ? "prefixes" : "ips"]: items,
    });

  const resume = async (intent: IntentRecord): Promise<void> => {
    log.info("resuming intent", { intent: intent.id, kind: intent.kind });
    const drop = (): Promise<void> => ds.write((tx) => tx.endIntent(intent.id));
    switch (intent.kind) {
      case "create":
        return created(await runner.run(createCall(ctx, intent)));
      case "attach": {
        const e = ds.eni(intent.eniId);
        return e ? attacher.attachAndWait(e) : drop();
      }
      case "assign":
        if (!ds.eni(intent.eniId)) return drop();
        return assigned(intent.eniId, await runner.run(assignCall(ctx, intent)), intent.unit);
      case "unassign":
        return released(intent, await runner.run(unassignCall(ctx, intent)));
      case "delete":
        return attacher.finishDelete(intent.eniId);
    }
  };

  /** A new intent's common part, with the ClientToken its call keeps across retries and restarts. */
  const withToken = <K extends "create" | "assign">(kind: K) => ({
    id: newId(kind),
    kind,
    clientToken: randomUUID(),
    at: deps.now(),
  });

  /** An unassign whose intent names what `take` took from the idle ones, in the intent's own write. */
  const unassignWith = async (
    take: (tx: Transitions) => Pick<IntentOf<"unassign">, "eniId" | "ips" | "prefixes" | "ipv6s">,
  ): Promise<void> => {
    const base = { id: newId("unassign"), kind: "unassign" as const, at: deps.now() };
    const written: { intent?: IntentOf<"unassign"> } = {};
    const begin = (tx: Transitions): IntentCall<readonly string[]> => {
      written.intent = { ...base, ...take(tx) };
      return unassignCall(ctx, written.intent);
    };
    const items = await runner.start(begin);
    if (written.intent) released(written.intent, items);
  };

  return {
    async create(vSwitchId, ipCount, prefixCount = 0) {
      const intent: IntentOf<"create"> = {
        ...withToken("create"),
        vSwitchId,
        ipCount,
        ...(prefixCount > 0 ? { prefixCount } : {}),
      };
      await created(await runner.start(() => createCall(ctx, intent)));
    },
    async assign(eniId, count) {
      const intent: IntentOf<"assign"> = { ...withToken("assign"), eniId, count };
      assigned(eniId, await runner.start(() => assignCall(ctx, intent)));
    },
    async assignPrefixes(eniId, count) {
      const intent: IntentOf<"assign"> = { ...withToken("assign"), eniId, count, unit: "prefixes" };
      assigned(eniId, await runner.start(() => assignCall(ctx, intent)), "prefixes");
    },
    async assignIpv6(eniId, count) {
      const intent: IntentOf<"assign"> = { ...withToken("assign"), eniId, count, unit: "ipv6" };
      assigned(eniId, await runner.start(() => assignCall(ctx, intent)), "ipv6");
    },
    async unassignIpv6(eniId, ipv6s) {
      const loose = ipv6s.filter((v6) => !ds.ips().some((r) => r.ipv6 === v6));
      if (loose.length === 0) return;
      await deps.cloud.unassignIpv6Addresses(eniId, loose);
      log.info("unpaired IPv6 addresses released to the cloud", { eniId, ipv6s: loose });
    },
    unassign: (eniId, ips) =>
      unassignWith((tx) => {
        const taken = tx.takeForRelease(eniId, ips);
        const ipv6s = taken.flatMap((ip) => ds.ip(ip)?.ipv6 ?? []);
        return { eniId, ips: taken, ...(ipv6s.length > 0 ? { ipv6s } : {}) };
      }),
    unassignPrefixes: (eniId, prefixes) =>
      unassignWith((tx) => {
        const taken = tx.takePrefixesForRelease(eniId, prefixes);
        return { eniId, ips: taken.flatMap(ipv4PrefixAddresses), prefixes: taken };
      }),
    remove: attacher.remove,
    resume,
  };
}
