// The daemon's narrow port to the API server: the pods of one node or of
// the cluster, namespaces and NetworkPolicies (list and watch), one pod, the
// Node, and Events. Everything above it sees plain values and typed
// failures; every request is counted, so the steady-state load on the API
// server can be measured. It speaks HTTP itself (http.ts), with
// @kubernetes/client-node's types only: the generated client of every API
// kind cost the daemon about 75 MB of memory for the ten calls it makes.

import type { CoreV1Event, V1Namespace, V1NetworkPolicy, V1Node, V1Pod } from "@kubernetes/client-node";
import type { KubeConnection } from "./connection.js";
import { createKubeHttp, KubeError } from "./http.js";
import {
  type NamespaceObject,
  namespaceObject,
  type PodInfo,
  type PolicyObject,
  podInfo,
  policyObject,
} from "./objects.js";

export type { KubeObject, NamespaceObject, PodInfo, PolicyObject } from "./objects.js";

export type WatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; obj: T; resourceVersion: string }
  | { type: "BOOKMARK"; resourceVersion: string }
  /** The server ended the watch with a Status; 410 means the resourceVersion is too old. */
  | { type: "ERROR"; code: number; message: string };

export interface ObjectWatch {
  /** Resolves when the watch ends: null when the server closed it, else the error. */
  done: Promise<Error | null>;
  stop(): void;
}

/** One kind of object, listed then watched from the list's resourceVersion. */
export interface ListWatch<T> {
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  watch(resourceVersion: string, on: (e: WatchEvent<T>) => void): Promise<ObjectWatch>;
}

export interface NodeInfo {
  name: string;
  annotations: Record<string, string>;
  /** status.capacity.pods, or null when the node does not say. */
  podCapacity: number | null;
}

export interface NodeCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export interface EventObject {
  name: string;
  namespace: string;
  involved: { kind: "Pod" | "Node" | "NetworkPolicy"; namespace: string; name: string; uid: string };
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  count: number;
  first: Date;
  last: Date;
  host: string;
}

export interface KubeApi {
  /** The API server this client talks to. */
  server: string;
  /** The pods of one node, or of the whole cluster when nodeName is "". */
  pods(nodeName: string): ListWatch<PodInfo>;
  namespaces: ListWatch<NamespaceObject>;
  networkPolicies: ListWatch<PolicyObject>;
  /** null: the pod does not exist (404). Any other failure throws. */
  getPod(namespace: string, name: string): Promise<PodInfo | null>;
  getNode(name: string): Promise<NodeInfo>;
  annotateNode(name: string, annotations: Record<string, string>): Promise<void>;
  setNodeCondition(name: string, condition: NodeCondition, transition: Date): Promise<void>;
  createEvent(e: EventObject): Promise<void>;
  updateEventCount(e: EventObject): Promise<void>;
  /** Requests sent since the client was made, by kind (list, watch, get, patch, create, …). */
  requests(): Record<string, number>;
}

export { KubeError };

const REQUEST_TIMEOUT_MS = 15_000;
/**
 * A watch that brings nothing (no event, no bookmark) for this long is ended
 * and watched again from where it was: a connection that died without a
 * word (a load balancer's failover) costs at most this much staleness.
 */
const WATCH_IDLE_MS = 120_000;
/** Objects per page of a list (`limit` and `continue`): a large cluster's pods come in pieces. */
const LIST_PAGE = 500;

const MERGE_PATCH = "application/merge-patch+json";
const STRATEGIC_PATCH = "application/strategic-merge-patch+json";

/** A list of some kind: its items and the resourceVersion to watch from. */
interface List<R> {
  items: R[];
  metadata?: { resourceVersion?: string; continue?: string };
}

const query = (params: Record<string, string | number | boolean | undefined>): string => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const text = q.toString();
  return text ? `?${text}` : "";
};
const seg = encodeURIComponent;

export function createKubeApi(conn: KubeConnection): KubeApi {
  const http = createKubeHttp(conn, REQUEST_TIMEOUT_MS);
  const counts: Record<string, number> = {};
  const count = (kind: string): void => {
    counts[kind] = (counts[kind] ?? 0) + 1;
  };
  const get = async <T>(path: string): Promise<T> => {
    count("get");
    return (await http.request("GET", path)) as T;
  };
  /** A ListWatch of one kind: `convert` keeps the fields the daemon uses, from a listed or a watched object. */
  const listWatch = <R extends { metadata?: { resourceVersion?: string } }, T>(
    path: string,
    fieldSelector: string | undefined,
    convert: (raw: R) => T,
  ): ListWatch<T> => ({
    async list() {
      // Page by page; every page is of the first page's resourceVersion, which the watch starts from.
      const items: T[] = [];
      let resourceVersion = "";
      let next: string | undefined;
      do {
        count("list");
        const params = { fieldSelector, limit: LIST_PAGE, continue: next };
        const l = (await http.request("GET", `${path}${query(params)}`)) as List<R>;
        for (const raw of l.items) items.push(convert(raw));
        resourceVersion ||= l.metadata?.resourceVersion ?? "";
        next = l.metadata?.continue || undefined;
      } while (next);
      return { items, resourceVersion };
    },
    async watch(resourceVersion, on) {
      count("watch");
      // The server ends a watch after this; the informer watches again from where it was.
      const timeoutSeconds = 240 + Math.floor(Math.random() * 120);
      const params = {
        watch: true,
        fieldSelector,
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds,
      };
      return http.watch(`${path}${query(params)}`, WATCH_IDLE_MS, (line) => {
        const { type, object } = line as { type?: string; object?: unknown };
        if (type === "ERROR") {
          const st = object as { code?: number; message?: string };
          on({ type, code: st.code ?? 0, message: st.message ?? "" });
        } else if (type === "BOOKMARK") {
          on({ type, resourceVersion: (object as R).metadata?.resourceVersion ?? resourceVersion });
        } else if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") {
          const raw = object as R;
          on({ type, obj: convert(raw), resourceVersion: raw.metadata?.resourceVersion ?? resourceVersion });
        }
      });
    },
  });
  const patch = async (path: string, body: unknown, contentType: string): Promise<void> => {
    count("patch");
    await http.request("PATCH", path, { json: body, contentType });
  };
  const eventBody = (e: EventObject): CoreV1Event => ({
    metadata: { name: e.name, namespace: e.namespace },
    involvedObject: {
      apiVersion: e.involved.kind === "NetworkPolicy" ? "networking.k8s.io/v1" : "v1",
      kind: e.involved.kind,
      name: e.involved.name,
      uid: e.involved.uid,
      ...(e.involved.namespace ? { namespace: e.involved.namespace } : {}),
    },
    type: e.type,
    reason: e.reason,
    message: e.message,
    count: e.count,
    firstTimestamp: e.first,
    lastTimestamp: e.last,
    source: { component: "eniway", host: e.host },
    reportingComponent: "eniway",
    reportingInstance: e.host,
  });

  return {
    server: conn.server,
    pods: (nodeName) =>
      listWatch<V1Pod, PodInfo>("/api/v1/pods", nodeName ? `spec.nodeName=${nodeName}` : undefined, podInfo),
    namespaces: listWatch<V1Namespace, NamespaceObject>("/api/v1/namespaces", undefined, namespaceObject),
    networkPolicies: listWatch<V1NetworkPolicy, PolicyObject>(
      "/apis/networking.k8s.io/v1/networkpolicies",
      undefined,
      policyObject,
    ),
    getPod: async (namespace, name) => {
      try {
        return podInfo(await get<V1Pod>(`/api/v1/namespaces/${seg(namespace)}/pods/${seg(name)}`));
      } catch (e) {
        if (e instanceof KubeError && e.status === 404) return null;
        throw e;
      }
    },
    getNode: async (name) => {
      const n = await get<V1Node>(`/api/v1/nodes/${seg(name)}`);
      const pods = n.status?.capacity?.pods;
      return {
        name,
        annotations: n.metadata?.annotations ?? {},
        podCapacity: pods !== undefined && /^\d+$/.test(pods) ? Number(pods) : null,
      };
    },
    annotateNode: (name, annotations) =>
      patch(`/api/v1/nodes/${seg(name)}`, { metadata: { annotations } }, MERGE_PATCH),
    setNodeCondition: (name, c, transition) => {
      const now = new Date().toISOString();
      const conditions = [{ ...c, lastHeartbeatTime: now, lastTransitionTime: transition.toISOString() }];
      return patch(`/api/v1/nodes/${seg(name)}/status`, { status: { conditions } }, STRATEGIC_PATCH);
    },
    createEvent: async (e) => {
      count("create");
      await http.request("POST", `/api/v1/namespaces/${seg(e.namespace)}/events`, { json: eventBody(e) });
    },
    updateEventCount: (e) =>
      patch(
        `/api/v1/namespaces/${seg(e.namespace)}/events/${seg(e.name)}`,
        { count: e.count, lastTimestamp: e.last.toISOString(), message: e.message },
        MERGE_PATCH,
      ),
    requests: () => ({ ...counts }),
  };
}
