// What the plugin and the daemon's datapath both know about a pod's wiring,
// stated once. Imports nothing: the standalone plugin is compiled with it.
// Network identifiers (IPv4, MAC, interface names) are in lib/net.ts.

/** The daemon's API socket when the configuration names none. */
export const DEFAULT_SOCKET = "/run/eniway/eniway.sock";

/** The pod's gateway: a link-local address the host veth answers for. */
export const POD_GATEWAY = "169.254.1.1";
/** The pod's IPv6 gateway (dual stack): link-local, a permanent neighbour with the host veth's MAC. */
export const POD_GATEWAY6 = "fe80::1";

/** Policy-rule priorities on the node: `to podIP lookup main`, then `from podIP lookup <ENI table>`. */
export const RULE_TO_POD = 512;
export const RULE_FROM_POD = 2048;
/** `fwmark 0x80 lookup main`: replies of connections that came in through the primary interface. */
export const RULE_PRIMARY_RETURN = 1024;
/** `fwmark 0x4000 lookup main`: connections kube-proxy masquerades to the node's address (a pod to a NodePort). */
export const RULE_MASQUERADED = 1025;

/** Host-side veths are `eni` + 11 hex digits of a hash of the attachment. */
export const HOST_VETH_PREFIX = "eni";
export const HOST_VETH_HASH_DIGITS = 11;
export const HOST_VETH = new RegExp(`^${HOST_VETH_PREFIX}[0-9a-f]{${HOST_VETH_HASH_DIGITS}}$`);

/** Each ENI routes by its own table: this base + the ENI device's ifindex. */
export const ENI_TABLE_BASE = 1000;

/**
 * The error codes of the daemon's socket API (`{error: {code, message}}`),
 * each with its HTTP status. The plugin turns each into a CNI error code.
 */
export const DAEMON_ERRORS = {
  /** A field of the request is missing or malformed. */
  BadRequest: 400,
  /** CHECK: the daemon holds no allocation for this container and interface. */
  UnknownContainer: 404,
  /** CHECK: a piece of the pod's network is missing or wrong (drift); the message names it. */
  CheckFailed: 409,
  /** The pool did not refill in time, or the daemon is starting or stopping. */
  TryAgainLater: 503,
  NotFound: 404,
  Internal: 500,
} as const;
export type DaemonErrorCode = keyof typeof DAEMON_ERRORS;
