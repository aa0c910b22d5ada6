// The pool's durable state: a lowdb JSON document with a format version.
// Mutations happen in memory; `update` resolves only once a write that
// contains the mutation is on disk. Writes are serialized and coalesced:
// while one write runs, every later mutation rides on the next one.

import { mkdir, readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Low } from "lowdb";
import { durableJsonFile } from "./durable-file.js";
import type { EniPhase, IpPhase } from "./planner.js";

/**
 * 2: an owner names its CNI network and the pod's namespace path. A format 1
 * store is read as format 2 (its owners' network and namespace unknown: "")
 * and written back as format 2.
 * 3: the addresses of IPv4 prefixes (`StoredIp.prefix`) and intents about
 * prefixes. Format 3 adds only optional fields, so a format 2 store reads as
 * it is; a store is written as format 3 only while it holds any of them, so
 * an older eniway refuses it then (it would take a prefix's addresses for
 * single IPs the cloud lacks, and drop their pods) and reads it otherwise.
 * 4: dual stack's IPv6 pairs (`StoredIp.ipv6`, `Owner.ipv6`, `StoredEni.gateway6`)
 * and intents about IPv6 (an assign with unit ipv6, an unassign's ipv6s);
 * written only while it holds any of them, so an eniway before dual stack
 * refuses it then (it would resume an IPv6 assign as an IPv4 one, and never
 * give its pods' IPv6 back).
 */
export const STORE_FORMAT = 4;
export const STORE_PREFIX_FORMAT = 3;
export const STORE_BASE_FORMAT = 2;
const READABLE_FORMATS = [1, STORE_BASE_FORMAT, STORE_PREFIX_FORMAT, STORE_FORMAT];

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export interface Owner {
  containerId: string;
  ifname: string;
  pod: PodRef;
  /**
   * The CNI network (the configuration's `name`) whose ADD made this
   * allocation: a GC releases only its own network's. "" when unknown (made
   * by the pool's own API, or stored before format 2): no GC releases it.
   */
  network: string;
  /** The pod's network namespace path (CNI_NETNS) at its ADD; "" when unknown. */
  netns: string;
  /** Dual stack: the IPv6 address the pod got with this IPv4 (the record's `ipv6` at its ADD). */
  ipv6?: string;
}

export interface StoredIp {
  ip: string;
  eniId: string;
  phase: IpPhase;
  idleSince: number;
  /** Cooling ends at this time (ms); persisted so it survives restarts. */
  coolUntil?: number;
  owner?: Owner;
  assignedAt?: number;
  /** A StatefulSet pod's IP, cooling for its return: "namespace/name" gets it back. */
  heldFor?: string;
  /**
   * The IPv4 prefix (/28) the address belongs to; none for a single IP (an
   * ENI's primary or secondary IP). A prefix's 16 addresses come and go together.
   */
  prefix?: string;
  /**
   * Dual stack: the IPv6 address of the same ENI paired with this IPv4; a
   * pod that gets the IPv4 gets it too. Assigned after the IPv4, released with it.
   */
  ipv6?: string;
}

export interface StoredEni {
  eniId: string;
  mac: string;
  vSwitchId: string;
  phase: EniPhase;
  primaryIp: string;
  /** The vSwitch gateway and CIDR, from metadata once attached. */
  gateway: string;
  cidr: string;
  /** The vSwitch's IPv6 gateway (metadata ipv6-gateway); none when it has no IPv6. */
  gateway6?: string;
  createdAt: number;
}

/**
 * A cloud call written ahead, so a crash at any instant can be resumed or
 * undone. A create's `prefixCount` is the IPv4 prefixes its ENI comes with
 * (its `ipCount` then 1, the primary IP); an assign's `unit` says whether
 * `count` counts IPs (left out), prefixes or IPv6 addresses; an unassign's
 * `prefixes` are the prefixes it gives back, `ips` then their addresses, and
 * its `ipv6s` the IPv6 addresses paired with its `ips` (they go first).
 */
export type Intent =
  | {
      id: string;
      kind: "create";
      clientToken: string;
      vSwitchId: string;
      ipCount: number;
      prefixCount?: number;
      at: number;
    }
  | { id: string; kind: "attach"; eniId: string; at: number }
  | {
      id: string;
      kind: "assign";
      clientToken: string;
      eniId: string;
      count: number;
      unit?: "prefixes" | "ipv6";
      at: number;
    }
  | {
      id: string;
      kind: "unassign";
      eniId: string;
      ips: string[];
      prefixes?: string[];
      ipv6s?: string[];
      at: number;
    }
  | { id: string; kind: "delete"; eniId: string; at: number };

export interface StoreDoc {
  format: number;
  instanceId: string;
  enis: Record<string, StoredEni>;
  ips: Record<string, StoredIp>;
  intents: Record<string, Intent>;
  blockedVSwitches: Record<string, number>;
  createBackoffUntil: number;
}

export interface Store {
  readonly file: string;
  readonly data: StoreDoc;
  /** Apply a mutation and resolve once it is durable. */
  update(mutate: (doc: StoreDoc) => void): Promise<void>;
  /** Resolve once everything mutated so far is durable. */
  flush(): Promise<void>;
  /** Flush, then give up the state dir's lock: another daemon may open it now. */
  close(): Promise<void>;
}

export class StoreError extends Error {
  override name = "StoreError";
}

function emptyDoc(instanceId: string): StoreDoc {
  return {
    format: STORE_BASE_FORMAT,
    instanceId,
    enis: {},
    ips: {},
    intents: {},
    blockedVSwitches: {},
    createBackoffUntil: 0,
  };
}

function parseDoc(file: string, instanceId: string): (text: string) => StoreDoc {
  return (text) => {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new StoreError(`store ${file} is not valid JSON (${(e as Error).message}); refusing to start`);
    }
    const d = doc as Partial<StoreDoc>;
    if (typeof d !== "object" || d === null || typeof d.format !== "number")
      throw new StoreError(`store ${file} has no format version; refusing to start`);
    if (!READABLE_FORMATS.includes(d.format))
      throw new StoreError(
        `store ${file} has format ${d.format}; this eniway reads formats ${READABLE_FORMATS.join(", ")}`,
      );
    if (d.instanceId !== instanceId)
      throw new StoreError(`store ${file} belongs to instance ${d.instanceId}, not ${instanceId}`);
    return migrate({ ...emptyDoc(instanceId), ...d } as StoreDoc);
  };
}

/** A document of an older readable format as this format: owners get an unknown network and namespace. */
function migrate(doc: StoreDoc): StoreDoc {
  for (const ip of Object.values(doc.ips ?? {})) {
    const old: Partial<Owner> | undefined = ip.owner;
    if (ip.owner) ip.owner = { ...ip.owner, network: old?.network ?? "", netns: old?.netns ?? "" };
  }
  return { ...doc, format: formatOf(doc) };
}

/**
 * The format a document is written in: 4 while it holds an IPv6 pair or an
 * intent about IPv6, else 3 while it holds a prefix's address or an intent
 * about prefixes, else 2.
 */
export function formatOf(doc: StoreDoc): number {
  const ipv6Intent = (i: Intent): boolean =>
    (i.kind === "assign" && i.unit === "ipv6") || (i.kind === "unassign" && (i.ipv6s?.length ?? 0) > 0);
  const usesIpv6 =
    Object.values(doc.ips ?? {}).some((r) => r.ipv6 !== undefined || r.owner?.ipv6 !== undefined) ||
    Object.values(doc.enis ?? {}).some((e) => e.gateway6 !== undefined) ||
    Object.values(doc.intents ?? {}).some(ipv6Intent);
  if (usesIpv6) return STORE_FORMAT;
  const prefixIntent = (i: Intent): boolean =>
    (i.kind === "create" && (i.prefixCount ?? 0) > 0) ||
    (i.kind === "assign" && i.unit === "prefixes") ||
    (i.kind === "unassign" && (i.prefixes?.length ?? 0) > 0);
  const usesPrefixes =
    Object.values(doc.ips ?? {}).some((r) => r.prefix !== undefined) ||
    Object.values(doc.intents ?? {}).some(prefixIntent);
  return usesPrefixes ? STORE_PREFIX_FORMAT : STORE_BASE_FORMAT;
}

/** Is another process with this pid alive? (Our own pid counts as a dead writer's.) */
function isRunning(pid: number): boolean {
  if (pid === process.pid || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One daemon per state dir (e.g. during a DaemonSet surge): a pid file, taken over when its owner is dead. */
async function takeLock(lock: string): Promise<void> {
  try {
    await writeFile(lock, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const owner = Number((await readFile(lock, "utf8").catch(() => "")).trim());
  if (isRunning(owner))
    throw new StoreError(`store ${lock} is held by running process ${owner}; refusing to start`);
  await writeFile(lock, `${process.pid}\n`, { mode: 0o600 });
}

/** `onWrite`: told how long each durable write (write, fsync, rename, fsync of the folder) took. */
export async function openStore(
  stateDir: string,
  instanceId: string,
  onWrite?: (seconds: number) => void,
): Promise<Store> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, "pool.json");
  // A crash mid-write leaves a temp file; the real file is intact (the rename never happened).
  // A temp file of a process still running is its write in progress: left alone.
  for (const name of await readdir(stateDir)) {
    const m = /^\.pool\.json\.(\d+)\.tmp$/.exec(name);
    if (m && !isRunning(Number(m[1]))) await unlink(join(stateDir, name)).catch(() => {});
  }
  const lock = join(stateDir, "pool.lock");
  await takeLock(lock);
  const db = new Low<StoreDoc>(durableJsonFile(file, parseDoc(file, instanceId)), emptyDoc(instanceId));
  await db.read();
  let writing = false;
  let next: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;

  const deferred = (): NonNullable<typeof next> => {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };

  const pump = async (): Promise<void> => {
    writing = true;
    while (next) {
      const batch = next;
      next = null;
      try {
        const started = performance.now();
        db.data.format = formatOf(db.data);
        await db.write();
        onWrite?.((performance.now() - started) / 1000);
        batch.resolve();
      } catch (e) {
        batch.reject(e);
      }
    }
    writing = false;
  };

  const flush = (): Promise<void> => {
    next ??= deferred();
    const p = next.promise;
    if (!writing) void pump();
    return p;
  };

  return {
    file,
    get data() {
      return db.data;
    },
    update(mutate) {
      mutate(db.data);
      return flush();
    },
    flush,
    async close() {
      await flush();
      // Only our own lock: a daemon that took over a stale one keeps it.
      const owner = Number((await readFile(lock, "utf8").catch(() => "")).trim());
      if (owner === process.pid) await unlink(lock).catch(() => {});
    },
  };
}
