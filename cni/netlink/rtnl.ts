// rtnetlink messages for wiring a pod's side, encoded by hand: the veth pair
// (its peer in the node namespace), links up, the pod's /32, its two routes
// and the gateway's permanent neighbour entry, as `ip` would send them; in
// dual stack also its IPv6 /128 (no DAD), the IPv6 default route and that
// gateway's neighbour. Pure: bytes in, bytes out, so that it is testable
// without a kernel. Addresses are given in eniway's text forms (lib/net.ts).

const NLMSG_ERROR = 2;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_NEWROUTE = 24;
const RTM_NEWNEIGH = 28;

const F_REQUEST = 0x1;
const F_ACK = 0x4;
const F_REPLACE = 0x100;
const F_EXCL = 0x200;
const F_CREATE = 0x400;

const AF_INET = 2;
const AF_INET6 = 10;
const IFA_F_NODAD = 0x02;
const IFF_UP = 0x1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const NDA_DST = 1;
const NDA_LLADDR = 2;

const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const NUD_PERMANENT = 0x80;

const align = (n: number): number => (n + 3) & ~3;

/** One attribute: its type and payload (padded), or nested attributes. */
function attr(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(align(4 + payload.length));
  const v = new DataView(out.buffer);
  v.setUint16(0, 4 + payload.length, true);
  v.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const cstr = (s: string): Uint8Array => concat([new TextEncoder().encode(s), new Uint8Array(1)]);
const ipv4 = (ip: string): Uint8Array => Uint8Array.from(ip.split(".").map(Number));

/** The 16 bytes of an IPv6 address in hex groups with at most one "::" (no embedded IPv4). */
function ipv6(ip: string): Uint8Array {
  const [head = "", tail] = ip.split("::");
  const groups = (s: string): number[] => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** An address's family, bytes and host prefix length. */
const addr = (ip: string): { family: number; bytes: Uint8Array; len: number } =>
  ip.includes(":")
    ? { family: AF_INET6, bytes: ipv6(ip), len: 128 }
    : { family: AF_INET, bytes: ipv4(ip), len: 32 };
const mac = (m: string): Uint8Array => Uint8Array.from(m.split(":").map((h) => Number.parseInt(h, 16)));

function ifinfomsg(index: number, flags: number, change: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

/** A whole message: header (length, type, flags, sequence) and body. */
function message(type: number, flags: number, seq: number, body: Uint8Array[]): Uint8Array {
  const payload = concat(body);
  const out = new Uint8Array(16 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, out.length, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  out.set(payload, 16);
  return out;
}

export interface VethSpec {
  ifname: string;
  mac: string;
  peerIfname: string;
  peerMac: string;
  mtu: number;
  /** An open file descriptor of the namespace the peer goes to. */
  peerNetnsFd: number;
}

export function newVeth(seq: number, s: VethSpec): Uint8Array {
  const peer = concat([
    ifinfomsg(0, 0, 0),
    attr(IFLA_IFNAME, cstr(s.peerIfname)),
    attr(IFLA_ADDRESS, mac(s.peerMac)),
    attr(IFLA_MTU, u32(s.mtu)),
    attr(IFLA_NET_NS_FD, u32(s.peerNetnsFd)),
  ]);
  const info = concat([attr(IFLA_INFO_KIND, cstr("veth")), attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))]);
  return message(RTM_NEWLINK, F_REQUEST | F_ACK | F_CREATE | F_EXCL, seq, [
    ifinfomsg(0, 0, 0),
    attr(IFLA_IFNAME, cstr(s.ifname)),
    attr(IFLA_ADDRESS, mac(s.mac)),
    attr(IFLA_MTU, u32(s.mtu)),
    attr(IFLA_LINKINFO, info),
  ]);
}

/** `ip link set dev NAME up`. */
export function linkUp(seq: number, ifname: string): Uint8Array {
  return message(RTM_NEWLINK, F_REQUEST | F_ACK, seq, [
    ifinfomsg(0, IFF_UP, IFF_UP),
    attr(IFLA_IFNAME, cstr(ifname)),
  ]);
}

/** `ip link show dev NAME`: the reply carries the index. */
export function getLink(seq: number, ifname: string): Uint8Array {
  return message(RTM_GETLINK, F_REQUEST, seq, [ifinfomsg(0, 0, 0), attr(IFLA_IFNAME, cstr(ifname))]);
}

/** `ip addr add IP/32 dev INDEX`, or for an IPv6 address `ip addr add IP/128 dev INDEX nodad`. */
export function newHostAddr(seq: number, index: number, ip: string): Uint8Array {
  const a = addr(ip);
  const head = new Uint8Array(8);
  const v = new DataView(head.buffer);
  v.setUint8(0, a.family);
  v.setUint8(1, a.len);
  v.setUint8(2, a.family === AF_INET6 ? IFA_F_NODAD : 0);
  v.setUint8(3, RT_SCOPE_UNIVERSE);
  v.setInt32(4, index, true);
  return message(RTM_NEWADDR, F_REQUEST | F_ACK | F_CREATE | F_EXCL, seq, [
    head,
    // An IPv6 address has no peer: IFA_ADDRESS alone, as `ip` sends it.
    ...(a.family === AF_INET ? [attr(IFA_LOCAL, a.bytes)] : []),
    attr(IFA_ADDRESS, a.bytes),
  ]);
}

function rtmsg(family: number, dstLen: number, scope: number): Uint8Array {
  return Uint8Array.from([family, dstLen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0, 0, 0, 0]);
}

/** `ip route add GW dev INDEX scope link`. */
export function newLinkRoute(seq: number, index: number, dst: string): Uint8Array {
  return message(RTM_NEWROUTE, F_REQUEST | F_ACK | F_CREATE | F_EXCL, seq, [
    rtmsg(AF_INET, 32, RT_SCOPE_LINK),
    attr(RTA_DST, ipv4(dst)),
    attr(RTA_OIF, u32(index)),
  ]);
}

/** `ip route add default via GW dev INDEX` (an IPv6 gateway: `::/0`). */
export function newDefaultRoute(seq: number, index: number, gateway: string): Uint8Array {
  const gw = addr(gateway);
  return message(RTM_NEWROUTE, F_REQUEST | F_ACK | F_CREATE | F_EXCL, seq, [
    rtmsg(gw.family, 0, RT_SCOPE_UNIVERSE),
    attr(RTA_GATEWAY, gw.bytes),
    attr(RTA_OIF, u32(index)),
  ]);
}

/** `ip neigh replace IP lladdr MAC dev INDEX nud permanent`. */
export function permanentNeigh(seq: number, index: number, ip: string, lladdr: string): Uint8Array {
  const a = addr(ip);
  const head = new Uint8Array(12);
  const v = new DataView(head.buffer);
  v.setUint8(0, a.family);
  v.setInt32(4, index, true);
  v.setUint16(8, NUD_PERMANENT, true);
  return message(RTM_NEWNEIGH, F_REQUEST | F_ACK | F_CREATE | F_REPLACE, seq, [
    head,
    attr(NDA_DST, a.bytes),
    attr(NDA_LLADDR, mac(lladdr)),
  ]);
}

/** What the kernel answered to one request. */
export type Reply =
  | { kind: "ack"; seq: number }
  | { kind: "error"; seq: number; errno: number }
  | { kind: "link"; seq: number; index: number }
  | { kind: "other"; seq: number; type: number };

/** The messages in one datagram. */
export function parseReplies(buf: Uint8Array): Reply[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Reply[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = v.getUint32(off, true);
    if (len < 16 || off + len > buf.length) break;
    const type = v.getUint16(off + 4, true);
    const seq = v.getUint32(off + 8, true);
    if (type === NLMSG_ERROR && len >= 20) {
      const err = v.getInt32(off + 16, true);
      out.push(err === 0 ? { kind: "ack", seq } : { kind: "error", seq, errno: -err });
    } else if (type === RTM_NEWLINK && len >= 32) {
      out.push({ kind: "link", seq, index: v.getInt32(off + 20, true) });
    } else out.push({ kind: "other", seq, type });
    off += align(len);
  }
  return out;
}
