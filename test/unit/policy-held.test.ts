// Which of the node's pods the gate holds, and when an operator is told.

import { describe, expect, it } from "vitest";
import {
  admittedKey,
  type Held,
  heldPods,
  type LocalPod,
  tellHeld,
} from "../../src/kubernetes/policy-held.js";

const pod = (name: string, ip: string, since = 0): LocalPod => ({
  namespace: "default",
  name,
  uid: `uid-${name}`,
  ip,
  hostIf: `eni${ip.split(".")[3]!.padStart(11, "0")}`,
  since,
});

describe("held pods", () => {
  it("are the local pods the kernel does not admit (by veth and address together), with why and how long", () => {
    const a = pod("a", "10.0.0.1", 1000);
    const b = pod("b", "10.0.0.2", 4000);
    const moved = { ...pod("c", "10.0.0.3"), hostIf: a.hostIf }; // a's veth with another address
    const held = heldPods([a, b, moved], new Set([admittedKey(a)]), 5000, (l) => `why ${l.name}`);
    expect(held.map((h) => [h.name, h.heldMs, h.reason])).toEqual([
      ["b", 1000, "why b"],
      ["c", 5000, "why c"],
    ]);
  });

  it("are told once past the threshold, again a while later if still held, and anew after being let in", () => {
    const told = new Map<string, number>();
    const said: string[] = [];
    const at = (now: number, held: Held[]): void =>
      tellHeld(told, held, { now, afterMs: 10_000, againMs: 60_000 }, (h) => said.push(`${h.name}@${now}`));
    const h = (since: number, now: number): Held[] =>
      heldPods([pod("a", "10.0.0.1", since)], new Set(), now, () => "");
    at(5_000, h(0, 5_000));
    at(10_000, h(0, 10_000));
    at(15_000, h(0, 15_000));
    at(70_000, h(0, 70_000));
    at(75_000, []); // let in
    at(90_000, h(80_000, 90_000)); // held again (a new ADD of the same pod)
    expect(said).toEqual(["a@10000", "a@70000", "a@90000"]);
  });
});
