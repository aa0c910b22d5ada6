// A small CRI client (runtime.v1 RuntimeService) over a unix socket, what
// crictl would be if Debian had it: the pod sandbox calls kubelet makes,
// with the message subset in cri-api.proto.

import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { packageRoot } from "../../lib/process.js";

// From the sources: the compiled copy of this file (dist/, for the benches) has no .proto beside it.
const PROTO = join(packageRoot(), "test/runtimes/cri-api.proto");

export interface PodSandboxMetadata {
  name: string;
  namespace: string;
  uid: string;
  attempt?: number;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  dnsConfig?: { servers?: string[]; searches?: string[]; options?: string[] };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroupParent?: string;
    securityContext?: {
      namespaceOptions?: {
        network?: "POD" | "NODE";
        pid?: "POD" | "CONTAINER" | "NODE";
        ipc?: "POD" | "NODE";
      };
    };
    sysctls?: Record<string, string>;
  };
}

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata | null;
  state: "SANDBOX_READY" | "SANDBOX_NOTREADY";
  createdAt: string;
  network: { ip: string; additionalIps: { ip: string }[] } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
}

export interface CriClient {
  version(): Promise<{
    version: string;
    runtimeName: string;
    runtimeVersion: string;
    runtimeApiVersion: string;
  }>;
  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; info: Record<string, string> }>;
  close(): void;
}

/** A CRI error: the gRPC status code and message, plus the RPC that failed. */
export class CriError extends Error {
  constructor(
    readonly rpc: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`CRI ${rpc} failed: ${grpc.status[code] ?? code}: ${details}`);
  }
}

/** Connects lazily: the first call fails (after `timeoutMs`) if nothing serves the socket. */
export function criClient(socketPath: string, timeoutMs = 60_000): CriClient {
  const def = protoLoader.loadSync(PROTO, {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } };
  };
  const Service = pkg.runtime.v1.RuntimeService;
  const client = new Service(`unix://${socketPath}`, grpc.credentials.createInsecure());

  const unary = <Res>(rpc: string, request: object): Promise<Res> => {
    const m = Service.service[rpc];
    if (!m) throw new Error(`no RPC ${rpc} in cri-api.proto`);
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err: grpc.ServiceError | null, res?: unknown) => {
          if (err) reject(new CriError(rpc, err.code, err.details));
          else resolve(res as Res);
        },
      );
    });
  };

  return {
    version: () => unary("Version", { version: "v1" }),
    runPodSandbox: async (config, runtimeHandler = "") =>
      (await unary<{ podSandboxId: string }>("RunPodSandbox", { config, runtimeHandler })).podSandboxId,
    stopPodSandbox: async (id) => {
      await unary("StopPodSandbox", { podSandboxId: id });
    },
    removePodSandbox: async (id) => {
      await unary("RemovePodSandbox", { podSandboxId: id });
    },
    podSandboxStatus: (id) => unary("PodSandboxStatus", { podSandboxId: id, verbose: true }),
    close: () => client.close(),
  };
}
