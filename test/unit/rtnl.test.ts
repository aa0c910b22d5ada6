// The netlink helper's messages, byte by byte where a mistake would still be
// accepted by the kernel (wrong flags, a misplaced attribute), and the reply
// parser on the three shapes the kernel sends back.

import { describe, expect, it } from "vitest";
import {
  getLink,
  linkUp,
  newDefaultRoute,
  newHostAddr,
  newLinkRoute,
  newVeth,
  parseReplies,
  permanentNeigh,
} from "../../cni/netlink/rtnl.js";

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
const header = (b: Uint8Array) => {
  const v = view(b);
  return {
    len: v.getUint32(0, true),
    type: v.getUint16(4, true),
    flags: v.getUint16(6, true),
    seq: v.getUint32(8, true),
  };
};

/** The attributes after a fixed-size head: [type, payload]. */
function attrs(b: Uint8Array, from: number): [number, Uint8Array][] {
  const v = view(b);
  const out: [number, Uint8Array][] = [];
  let off = from;
  while (off + 4 <= b.length) {
    const len = v.getUint16(off, true);
    out.push([v.getUint16(off + 2, true), b.subarray(off + 4, off + len)]);
    off += (len + 3) & ~3;
  }
  return out;
}
const text = (p: Uint8Array): string => new TextDecoder().decode(p.subarray(0, p.indexOf(0)));
const hex = (p: Uint8Array): string => [...p].map((x) => x.toString(16).padStart(2, "0")).join(":");

describe("rtnetlink messages", () => {
  it("a veth pair whose peer goes to another namespace, created only if absent", () => {
    const m = newVeth(7, {
      ifname: "eth0",
      mac: "02:aa:bb:cc:dd:01",
      peerIfname: "eni1234567890a",
      peerMac: "02:aa:bb:cc:dd:02",
      mtu: 1500,
      peerNetnsFd: 9,
    });
    expect(header(m)).toEqual({ len: m.length, type: 16, flags: 0x1 | 0x4 | 0x400 | 0x200, seq: 7 });
    expect(m.length % 4).toBe(0);
    const top = attrs(m, 32);
    expect(top.map(([t]) => t)).toEqual([3, 1, 4, 18]);
    expect(text(top[0]![1])).toBe("eth0");
    expect(hex(top[1]![1])).toBe("02:aa:bb:cc:dd:01");
    expect(view(top[2]![1]).getUint32(0, true)).toBe(1500);
    const info = attrs(top[3]![1], 0);
    expect(info.map(([t]) => t)).toEqual([1, 2]);
    expect(text(info[0]![1])).toBe("veth");
    const [peerAttr] = attrs(info[1]![1], 0);
    expect(peerAttr![0]).toBe(1); // VETH_INFO_PEER: an ifinfomsg, then the peer's attributes
    const peer = attrs(peerAttr![1], 16);
    expect(peer.map(([t]) => t)).toEqual([3, 1, 4, 28]);
    expect(text(peer[0]![1])).toBe("eni1234567890a");
    expect(hex(peer[1]![1])).toBe("02:aa:bb:cc:dd:02");
    expect(view(peer[3]![1]).getUint32(0, true)).toBe(9);
  });

  it("link up changes only the up flag of the named link", () => {
    const m = linkUp(3, "lo");
    expect(header(m)).toMatchObject({ type: 16, flags: 0x1 | 0x4 });
    expect(view(m).getUint32(24, true)).toBe(1); // ifi_flags
    expect(view(m).getUint32(28, true)).toBe(1); // ifi_change
    expect(text(attrs(m, 32)[0]![1])).toBe("lo");
    expect(header(getLink(4, "eth0"))).toMatchObject({ type: 18, flags: 0x1 });
  });

  it("the pod's /32, routes and permanent neighbour", () => {
    const a = newHostAddr(1, 5, "10.1.2.3");
    expect(header(a)).toMatchObject({ type: 20, flags: 0x1 | 0x4 | 0x400 | 0x200 });
    expect([a[16], a[17]]).toEqual([2, 32]);
    expect(view(a).getInt32(20, true)).toBe(5);
    expect(attrs(a, 24).map(([t, p]) => [t, [...p].join(".")])).toEqual([
      [2, "10.1.2.3"],
      [1, "10.1.2.3"],
    ]);
    const link = newLinkRoute(2, 5, "169.254.1.1");
    expect([...link.subarray(16, 24)]).toEqual([2, 32, 0, 0, 254, 3, 253, 1]); // main table, scope link
    expect(attrs(link, 28).map(([t]) => t)).toEqual([1, 4]);
    const def = newDefaultRoute(3, 5, "169.254.1.1");
    expect([...def.subarray(16, 24)]).toEqual([2, 0, 0, 0, 254, 3, 0, 1]);
    expect(attrs(def, 28).map(([t, p]) => [t, [...p].join(".")])).toEqual([
      [5, "169.254.1.1"],
      [4, "5.0.0.0"],
    ]);
    const n = permanentNeigh(4, 5, "169.254.1.1", "02:aa:bb:cc:dd:02");
    expect(header(n)).toMatchObject({ type: 28, flags: 0x1 | 0x4 | 0x400 | 0x100 });
    expect(view(n).getUint16(24, true)).toBe(0x80);
    expect(hex(attrs(n, 28)[1]![1])).toBe("02:aa:bb:cc:dd:02");
  });

  it("the pod's IPv6 /128 without DAD, its default route via fe80::1 and that neighbour", () => {
    const bytes = (p: Uint8Array): string => Buffer.from(p).toString("hex");
    const a = newHostAddr(1, 5, "fd00:10:0:1::2a");
    expect([a[16], a[17], a[18]]).toEqual([10, 128, 0x02]); // AF_INET6, /128, IFA_F_NODAD
    expect(attrs(a, 24).map(([t, p]) => [t, bytes(p)])).toEqual([[1, "fd00001000000001000000000000002a"]]);
    const def = newDefaultRoute(2, 5, "fe80::1");
    expect([...def.subarray(16, 24)]).toEqual([10, 0, 0, 0, 254, 3, 0, 1]);
    expect(attrs(def, 28).map(([t, p]) => [t, bytes(p)])).toEqual([
      [5, "fe800000000000000000000000000001"],
      [4, "05000000"],
    ]);
    const n = permanentNeigh(3, 5, "fe80::1", "02:aa:bb:cc:dd:02");
    expect(n[16]).toBe(10);
    expect(bytes(attrs(n, 28)[0]![1])).toBe("fe800000000000000000000000000001");
    // A full address, and one compressed at its start.
    expect(bytes(attrs(newHostAddr(4, 5, "2408:4005:39c:7a00:d2c1:4c6c:8f73:6b12"), 24)[0]![1])).toBe(
      "24084005039c7a00d2c14c6c8f736b12",
    );
    expect(bytes(attrs(newHostAddr(5, 5, "::1"), 24)[0]![1])).toBe("00000000000000000000000000000001");
  });
});

describe("replies", () => {
  const msg = (type: number, seq: number, body: number[]): number[] => {
    const b = new Uint8Array(16 + body.length);
    const v = new DataView(b.buffer);
    v.setUint32(0, b.length, true);
    v.setUint16(4, type, true);
    v.setUint32(8, seq, true);
    b.set(body, 16);
    return [...b];
  };
  const i32 = (n: number): number[] => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n, true);
    return [...b];
  };

  it("an ack, an error with its errno, and a link with its index, in one datagram", () => {
    const buf = Uint8Array.from([
      ...msg(2, 1, [...i32(0), ...new Array(16).fill(0)]),
      ...msg(2, 2, [...i32(-17), ...new Array(16).fill(0)]),
      ...msg(16, 3, [0, 0, 0, 0, ...i32(42), ...new Array(8).fill(0)]),
      ...msg(3, 4, []),
    ]);
    expect(parseReplies(buf)).toEqual([
      { kind: "ack", seq: 1 },
      { kind: "error", seq: 2, errno: 17 },
      { kind: "link", seq: 3, index: 42 },
      { kind: "other", seq: 4, type: 3 },
    ]);
  });

  it("stops at a truncated message instead of reading past the datagram", () => {
    const whole = Uint8Array.from(msg(2, 1, [...i32(0), ...new Array(16).fill(0)]));
    expect(parseReplies(whole.subarray(0, 30))).toEqual([]);
    expect(parseReplies(new Uint8Array(0))).toEqual([]);
  });
});
