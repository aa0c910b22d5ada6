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
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  Watch,
} from "@kubernetes/client-node";

/** What the daemon needs to know of a pod. */
export interface PodInfo {
  namespace: string;
  name: string;
  uid: string;
  /** Owned by a StatefulSet: its IP is held for its return under the same name. */
  statefulSet: boolean;
  hostNetwork: boolean;
  podIp: string;
  createdAt: number;
  annotations: Record<string, string>;
}

export type WatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; pod: PodInfo; resourceVersion: string }
  | { type: "BOOKMARK"; resourceVersion: string }
  /** The server ended the watch with a Status; 410 means the resourceVersion is too old. */
  | { type: "ERROR"; code: number; message: string };

export interface PodWatch {
  /** Resolves when the watch ends: null when the server closed it, else the error. */
  done: Promise<Error | null>;
  stop(): void;
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
  involved: { kind: "Pod" | "Node"; namespace: string; name: string; uid: string };
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
  listPods(nodeName: string): Promise<{ pods: PodInfo[]; resourceVersion: string }>;
  watchPods(nodeName: string, resourceVersion: string, on: (e: WatchEvent) => void): Promise<PodWatch>;
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

export const STATEFULSET_KIND = "StatefulSet";
const REQUEST_TIMEOUT_MS = 15_000;

export function podInfo(p: V1Pod): PodInfo {
  const m = p.metadata ?? {};
  return {
    namespace: m.namespace ?? "",
    name: m.name ?? "",
    uid: m.uid ?? "",
    statefulSet: (m.ownerReferences ?? []).some((o) => o.kind === STATEFULSET_KIND && o.controller !== false),
    hostNetwork: p.spec?.hostNetwork === true,
    podIp: p.status?.podIP ?? "",
    createdAt: m.creationTimestamp ? new Date(m.creationTimestamp).getTime() : 0,
    annotations: m.annotations ?? {},
  };
}

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
  const server = kc.getCurrentCluster()?.server ?? "";
  const eventBody = (e: EventObject): CoreV1Event => ({
    metadata: { name: e.name, namespace: e.namespace },
    involvedObject: {
      apiVersion: "v1",
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
    listPods: (nodeName) =>
      call("list", "list pods", async () => {
        const list = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` });
        return { pods: list.items.map(podInfo), resourceVersion: list.metadata?.resourceVersion ?? "" };
      }),
    watchPods: (nodeName, resourceVersion, on) =>
      call("watch", "watch pods", async () => {
        let finish!: (e: Error | null) => void;
        const done = new Promise<Error | null>((r) => {
          finish = r;
        });
        const controller = await watcher.watch(
          "/api/v1/pods",
          {
            fieldSelector: `spec.nodeName=${nodeName}`,
            resourceVersion,
            allowWatchBookmarks: true,
            // The server ends a watch after this; the informer watches again from where it was.
            timeoutSeconds: 240 + Math.floor(Math.random() * 120),
          },
          (type: string, obj: unknown) => {
            if (type === "ERROR") {
              const s = obj as { code?: number; message?: string };
              on({ type, code: s.code ?? 0, message: s.message ?? "" });
            } else if (type === "BOOKMARK") {
              const rv = (obj as V1Pod).metadata?.resourceVersion ?? resourceVersion;
              on({ type, resourceVersion: rv });
            } else if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") {
              const pod = obj as V1Pod;
              on({
                type,
                pod: podInfo(pod),
                resourceVersion: pod.metadata?.resourceVersion ?? resourceVersion,
              });
            }
          },
          (err: unknown) => finish(err ? kubeError(err, "watch pods") : null),
        );
        return { done, stop: () => controller.abort() };
      }),
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
