// The daemon's narrow port to the API server, over @kubernetes/client-node:
// the pods of one node (list and watch), one pod, the Node, and Events.
// Everything above it sees plain values and typed failures, never the
// generated client; every request is counted, so the steady-state load on
// the API server can be measured.

import {
  ApiException,
  CoreV1Api,
  type CoreV1Event,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from "@kubernetes/client-node";
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

/** A failed request with the API server's HTTP status (0: no answer at all). */
export class KubeError extends Error {
  override name = "KubeError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const REQUEST_TIMEOUT_MS = 15_000;

function kubeError(e: unknown, what: string): KubeError {
  if (e instanceof KubeError) return e;
  if (e instanceof ApiException) {
    const body = typeof e.body === "string" ? e.body : JSON.stringify(e.body ?? "");
    let reason = body;
    try {
      const status = JSON.parse(body) as { message?: string };
      reason = status.message ?? body;
    } catch {}
    return new KubeError(e.code, `${what}: HTTP ${e.code}: ${reason.slice(0, 300)}`);
  }
  const code = (e as { statusCode?: number }).statusCode;
  return new KubeError(
    typeof code === "number" ? code : 0,
    `${what}: ${e instanceof Error ? e.message : String(e)}`,
  );
}

/** A KubeConfig from a file, or in-cluster from the ServiceAccount's files when file is null. */
export function loadKubeConfig(file: string | null): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  return kc;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const strategicPatch = setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);

export function createKubeApi(kc: KubeConfig): KubeApi {
  const core = kc.makeApiClient(CoreV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const watcher = new Watch(kc);
  const counts: Record<string, number> = {};
  const call = async <T>(kind: string, what: string, fn: () => Promise<T>): Promise<T> => {
    counts[kind] = (counts[kind] ?? 0) + 1;
    let timer: NodeJS.Timeout | undefined;
    // A server that accepts and never answers must not stall the loops (a watch: until its headers).
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new KubeError(0, `${what}: no answer within ${REQUEST_TIMEOUT_MS} ms`)),
        REQUEST_TIMEOUT_MS,
      );
    });
    try {
      return await Promise.race([fn(), late]);
    } catch (e) {
      throw kubeError(e, what);
    } finally {
      clearTimeout(timer);
    }
  };
  /** A ListWatch of one kind: `convert` keeps the fields the daemon uses, from a listed or a watched object. */
  const listWatch = <R extends { metadata?: { resourceVersion?: string } }, T>(
    what: string,
    path: string,
    fieldSelector: string | undefined,
    convert: (raw: R) => T,
    list: () => Promise<{ items: R[]; resourceVersion: string }>,
  ): ListWatch<T> => ({
    list: () =>
      call("list", `list ${what}`, async () => {
        const l = await list();
        return { items: l.items.map(convert), resourceVersion: l.resourceVersion };
      }),
    watch: (resourceVersion, on) =>
      call("watch", `watch ${what}`, async () => {
        let finish!: (e: Error | null) => void;
        const done = new Promise<Error | null>((r) => {
          finish = r;
        });
        const controller = await watcher.watch(
          path,
          {
            ...(fieldSelector ? { fieldSelector } : {}),
            resourceVersion,
            allowWatchBookmarks: true,
            // The server ends a watch after this; the informer watches again from where it was.
            timeoutSeconds: 240 + Math.floor(Math.random() * 120),
          },
          (type: string, obj: unknown) => {
            if (type === "ERROR") {
              const st = obj as { code?: number; message?: string };
              on({ type, code: st.code ?? 0, message: st.message ?? "" });
            } else if (type === "BOOKMARK") {
              on({ type, resourceVersion: (obj as R).metadata?.resourceVersion ?? resourceVersion });
            } else if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") {
              const raw = obj as R;
              on({
                type,
                obj: convert(raw),
                resourceVersion: raw.metadata?.resourceVersion ?? resourceVersion,
              });
            }
          },
          (err: unknown) => finish(err ? kubeError(err, `watch ${what}`) : null),
        );
        return { done, stop: () => controller.abort() };
      }),
  });
  const server = kc.getCurrentCluster()?.server ?? "";
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
    server,
    pods: (nodeName) => {
      const fieldSelector = nodeName ? `spec.nodeName=${nodeName}` : undefined;
      return listWatch("pods", "/api/v1/pods", fieldSelector, podInfo, async () => {
        const l = await core.listPodForAllNamespaces(fieldSelector ? { fieldSelector } : {});
        return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? "" };
      });
    },
    namespaces: listWatch("namespaces", "/api/v1/namespaces", undefined, namespaceObject, async () => {
      const l = await core.listNamespace();
      return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? "" };
    }),
    networkPolicies: listWatch(
      "networkpolicies",
      "/apis/networking.k8s.io/v1/networkpolicies",
      undefined,
      policyObject,
      async () => {
        const l = await networking.listNetworkPolicyForAllNamespaces();
        return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? "" };
      },
    ),
    getPod: (namespace, name) =>
      call("get", `get pod ${namespace}/${name}`, async () => {
        try {
          return podInfo(await core.readNamespacedPod({ namespace, name }));
        } catch (e) {
          if (e instanceof ApiException && e.code === 404) return null;
          throw e;
        }
      }),
    getNode: (name) =>
      call("get", `get node ${name}`, async () => {
        const n = await core.readNode({ name });
        const pods = n.status?.capacity?.pods;
        return {
          name,
          annotations: n.metadata?.annotations ?? {},
          podCapacity: pods !== undefined && /^\d+$/.test(pods) ? Number(pods) : null,
        };
      }),
    annotateNode: (name, annotations) =>
      call("patch", `annotate node ${name}`, async () => {
        await core.patchNode({ name, body: { metadata: { annotations } } }, mergePatch);
      }),
    setNodeCondition: (name, c, transition) =>
      call("patch", `set condition ${c.type} of node ${name}`, async () => {
        const now = new Date().toISOString();
        const body = {
          status: {
            conditions: [{ ...c, lastHeartbeatTime: now, lastTransitionTime: transition.toISOString() }],
          },
        };
        await core.patchNodeStatus({ name, body }, strategicPatch);
      }),
    createEvent: (e) =>
      call("create", `create event ${e.reason}`, async () => {
        await core.createNamespacedEvent({ namespace: e.namespace, body: eventBody(e) });
      }),
    updateEventCount: (e) =>
      call("patch", `update event ${e.reason}`, async () => {
        const body = { count: e.count, lastTimestamp: e.last.toISOString(), message: e.message };
        await core.patchNamespacedEvent({ name: e.name, namespace: e.namespace, body }, mergePatch);
      }),
    requests: () => ({ ...counts }),
  };
}
