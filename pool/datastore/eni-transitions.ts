// The named transitions of one ENI: created → attaching → ready → deleting
// → gone, an attach undone, and an attached ENI adopted from the cloud.
// Each checks the state it starts from and refuses one it may not take.

import type { StoredEni } from "../store.js";
import { type EniRecord, type IpRecord, TransitionError, type TxContext, without } from "./records.js";

/** What the cloud says of an ENI the pool takes in. */
export type NewEni = Pick<StoredEni, "eniId" | "mac" | "vSwitchId" | "primaryIp">;
/** An attached ENI's vSwitch gateway and CIDR, and its IPv6 gateway if any, from the metadata. */
export type EniNet = Pick<StoredEni, "gateway" | "cidr" | "gateway6">;

export interface EniTransitions {
  /** Unknown → attaching: an ENI just created. */
  eniAttaching(eni: NewEni): void;
  /** Unknown → ready: an ENI attached here that the cloud has and the pool did not know. */
  adoptEni(eni: NewEni, net: EniNet): void;
  /** Attaching (or ready) → ready, with its gateway and CIDR; its idle IPs are idle from now. An ENI gone: nothing. */
  eniReady(eniId: string, net: EniNet): void;
  /** A ready ENI learns its IPv6 gateway (made ready before its vSwitch had IPv6, or by an older eniway). */
  eniGateway6(eniId: string, gateway6: string): void;
  /** Any phase → deleting, its IPs as they are: an attach that failed is undone. An ENI gone: nothing. */
  attachFailed(eniId: string): void;
  /** Ready with every IP idle (see `deletable`) → deleting, its IPs releasing. */
  eniDeleting(eniId: string): void;
  /** The ENI and its IPs → gone. The IPs it had. */
  dropEni(eniId: string): IpRecord[];
}

/** May the ENI be deleted now: ready, and none of its IPs a pod's, cooling or on its way out? */
export function deletable(doc: TxContext["doc"], eniId: string): boolean {
  return (
    doc.enis[eniId]?.phase === "ready" &&
    Object.values(doc.ips).every((r) => r.eniId !== eniId || r.phase === "idle")
  );
}

export function eniTransitions(ctx: TxContext): EniTransitions {
  const { doc, journal } = ctx;
  const put = (row: StoredEni): void => {
    journal.put("enis", row.eniId, row);
    ctx.touch(row.eniId);
  };
  const unknown = (eni: NewEni, what: string): void => {
    if (doc.enis[eni.eniId])
      throw new TransitionError(
        `cannot ${what} ${eni.eniId}: the pool has it already (${doc.enis[eni.eniId]?.phase})`,
      );
  };
  const ipsOf = (eniId: string): IpRecord[] => Object.values(doc.ips).filter((r) => r.eniId === eniId);
  const fresh = (eni: NewEni, phase: StoredEni["phase"], net: EniNet): StoredEni => ({
    eniId: eni.eniId,
    mac: eni.mac,
    vSwitchId: eni.vSwitchId,
    phase,
    primaryIp: eni.primaryIp,
    gateway: net.gateway,
    cidr: net.cidr,
    ...(net.gateway6 ? { gateway6: net.gateway6 } : {}),
    createdAt: ctx.now,
  });

  return {
    eniAttaching(eni) {
      unknown(eni, "attach");
      put(fresh(eni, "attaching", { gateway: "", cidr: "" }));
    },
    adoptEni(eni, net) {
      unknown(eni, "adopt");
      put(fresh(eni, "ready", net));
    },
    eniReady(eniId, net) {
      const e: EniRecord | undefined = doc.enis[eniId];
      if (!e) return;
      // Ready again: an attach resumed while the first one ran finished second.
      if (e.phase === "deleting") throw new TransitionError(`cannot make ${eniId} ready: it is deleting`);
      put({
        ...without(e, "gateway6"),
        phase: "ready",
        gateway: net.gateway,
        cidr: net.cidr,
        ...(net.gateway6 ? { gateway6: net.gateway6 } : {}),
      });
      for (const rec of ipsOf(eniId))
        if (rec.phase === "idle") journal.put("ips", rec.ip, { ...rec, idleSince: ctx.now });
    },
    eniGateway6(eniId, gateway6) {
      const e = doc.enis[eniId];
      if (e?.phase === "ready" && e.gateway6 !== gateway6) put({ ...e, gateway6 });
    },
    attachFailed(eniId) {
      const e = doc.enis[eniId];
      if (e) put({ ...e, phase: "deleting" });
    },
    eniDeleting(eniId) {
      const e = doc.enis[eniId];
      if (!e || !deletable(doc, eniId))
        throw new TransitionError(`cannot delete ${eniId}: it is not ready with every IP idle`);
      put({ ...e, phase: "deleting" });
      for (const rec of ipsOf(eniId)) journal.put("ips", rec.ip, { ...rec, phase: "releasing" });
    },
    dropEni(eniId) {
      const dropped = ipsOf(eniId);
      if (!doc.enis[eniId] && dropped.length === 0) return [];
      journal.remove("enis", eniId);
      for (const rec of dropped) journal.remove("ips", rec.ip);
      ctx.touch(eniId);
      return dropped;
    },
  };
}
