// A real Kubernetes control plane for the sandbox and the tests: etcd and
// kube-apiserver (built by test/kubernetes.sh) on free loopback ports, with
// token authentication, the Node and RBAC authorizers, ServiceAccount tokens
// (TokenRequest), and eniway's ServiceAccount bound to the rules the chart
// ships. Nothing is faked: the daemon talks to it as it would to a cluster.

import type { ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { networkInterfaces } from "node:os";
import { dirname, join } from "node:path";
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1PolicyRule } from "@kubernetes/client-node";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { freePort } from "../../lib/http.js";
import {
  endOf,
  findTool,
  hasExited,
  logTail,
  packageRoot,
  spawnLogged,
  waitExit,
} from "../../lib/process.js";
import { sleep } from "../../lib/time.js";

export const KUBERNETES_VERSION = "1.20.2";
export const SERVICE_ACCOUNT = { namespace: "kube-system", name: "eniway" } as const;
/** The ClusterRole rules, shared with the Helm chart. */
export const RBAC_RULES_FILE = "charts/eniway/files/clusterrole-rules.yaml";
/** The Services' IPv4 range (the cluster DNS's 10.96.0.10 is in it). */
export const SERVICE_CIDR = "10.96.0.0/16";
/**
 * The Services' IPv6 range of a dual-stack cluster, outside the sandbox VPC's
 * fd00:10::/56. Kubernetes 1.20 keeps a Service range as a bitmap in etcd and
 * refuses a wider one ("specified --service-cluster-ip-range[1] is too large;
 * for 128-bit addresses, the mask must be >= 108"): a /108 is the largest.
 */
export const SERVICE_CIDR_V6 = "fd00:96::/108";
/**
 * Dual stack in Kubernetes 1.20 is alpha, behind this gate: on the API server
 * (the secondary Service range; without the gate it keeps only the first of a
 * pod's status.podIPs), the controller manager (an EndpointSlice per family),
 * the scheduler, every kubelet and every kube-proxy (an ip6tables proxier).
 */
export const DUAL_STACK_GATE = "--feature-gates=IPv6DualStack=true";

export interface ControlPlane {
  server: string;
  /** An admin kubeconfig (system:masters), for tests and operators. */
  adminKubeconfig: string;
  admin: KubeConfig;
  dir: string;
  /** A kubeconfig for eniway's ServiceAccount, with a token from the TokenRequest API. */
  serviceAccountKubeconfig(file: string): Promise<string>;
  /** A Node object as a kubelet would register it, with its pod capacity. */
  createNode(name: string, podCapacity: number): Promise<void>;
  /** Stop and start kube-apiserver alone (etcd keeps the data). */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** etcd's and kube-apiserver's, for `sandbox down` after a crash. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Where test/kubernetes.sh put the binaries: $ENIWAY_KUBE_BIN, or its cache. */
export function kubeBinDir(): string {
  const dir =
    process.env.ENIWAY_KUBE_BIN ??
    join(process.env.ENIWAY_KUBE_CACHE ?? "/var/cache/eniway", `kubernetes-${KUBERNETES_VERSION}`, "bin");
  if (!existsSync(join(dir, "kube-apiserver")))
    throw new Error(
      `kube-apiserver ${KUBERNETES_VERSION} not found in ${dir}: run bash test/kubernetes.sh (it builds it once per machine from Debian's source, about 5 minutes)`,
    );
  return dir;
}

/**
 * What test/kubernetes.sh built beside the binaries from the same source:
 * the upstream e2e suite (e2e.test) and its test image's agnhost.
 */
export function kubeE2eDir(): string {
  const dir = join(dirname(kubeBinDir()), "e2e");
  if (!existsSync(join(dir, "e2e.test")) || !existsSync(join(dir, "agnhost")))
    throw new Error(
      `the e2e suite of Kubernetes ${KUBERNETES_VERSION} is not built in ${dir}: run bash test/kubernetes.sh (it builds e2e.test and agnhost once per machine)`,
    );
  return dir;
}

/** kube-apiserver refuses a loopback advertise address: use the machine's first other IPv4. */
function advertiseAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return "192.0.2.1";
}

export async function rbacRules(): Promise<V1PolicyRule[]> {
  const rules = parseYaml(await readFile(join(packageRoot(), RBAC_RULES_FILE), "utf8")) as V1PolicyRule[];
  if (!Array.isArray(rules) || rules.length === 0) throw new Error(`${RBAC_RULES_FILE} holds no rules`);
  return rules;
}

export function kubeconfigYaml(server: string, user: string, token: string): string {
  return toYaml({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "sandbox", cluster: { server, "insecure-skip-tls-verify": true } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "sandbox", context: { cluster: "sandbox", user } }],
    "current-context": "sandbox",
  });
}

function readyz(server: string, token: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      `${server}/readyz`,
      { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** SIGTERM, and SIGKILL after 3 s: the sandbox's stop never waits long for one process. */
async function stopChild(c: ChildProcess | null): Promise<void> {
  if (!c || hasExited(c)) return;
  c.kill("SIGTERM");
  if (!(await waitExit(c, 3000))) {
    c.kill("SIGKILL");
    await waitExit(c);
  }
}

export interface ControlPlaneOptions {
  /** Serve on this address (nodes in other namespaces reach it there) instead of 127.0.0.1. */
  address?: string;
  /**
   * A whole cluster: kube-controller-manager and kube-scheduler too, and no
   * eniway ServiceAccount or RBAC (the Helm chart installs those).
   */
  cluster?: boolean;
  /**
   * IPv4 and IPv6 (the IPv6DualStack gate, Services from SERVICE_CIDR and
   * SERVICE_CIDR_V6, IPv4 the primary family as in a single-stack cluster).
   */
  dualStack?: boolean;
}

const ignoreConflict = (e: unknown): void => {
  if ((e as { code?: number }).code !== 409) throw e;
};

export async function startControlPlane(dir: string, opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const bin = kubeBinDir();
  const etcdBin = findTool("etcd");
  if (!etcdBin)
    throw new Error("etcd not found: apt-get install -y etcd-server (bash test/setup.sh installs it)");
  await mkdir(join(dir, "pki"), { recursive: true, mode: 0o700 });
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const address = opts.address ?? "127.0.0.1";
  const server = `https://${address}:${apiPort}`;
  const adminToken = randomBytes(24).toString("hex");
  const pki = join(dir, "pki");
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await writeFile(join(pki, "sa.key"), privateKey.export({ type: "pkcs1", format: "pem" }), { mode: 0o600 });
  await writeFile(join(pki, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  await writeFile(join(pki, "tokens.csv"), `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });
  const adminKubeconfig = join(dir, "admin.kubeconfig");
  await writeFile(adminKubeconfig, kubeconfigYaml(server, "admin", adminToken), { mode: 0o600 });

  const etcd = await spawnLogged(
    [
      etcdBin,
      "--name=eniway",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=eniway=http://127.0.0.1:${peerPort}`,
      "--log-level=warn",
    ],
    join(dir, "etcd.log"),
  );
  const dual = opts.dualStack === true;
  const serviceRange = `--service-cluster-ip-range=${dual ? `${SERVICE_CIDR},${SERVICE_CIDR_V6}` : SERVICE_CIDR}`;
  const gates = dual ? [DUAL_STACK_GATE] : [];
  const apiserverArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdPort}`,
    `--bind-address=${address}`,
    `--advertise-address=${opts.address ?? advertiseAddress()}`,
    `--secure-port=${apiPort}`,
    "--insecure-port=0",
    `--cert-dir=${join(dir, "certs")}`,
    `--token-auth-file=${join(pki, "tokens.csv")}`,
    "--authorization-mode=Node,RBAC",
    serviceRange,
    ...gates,
    `--service-account-key-file=${join(pki, "sa.pub")}`,
    `--service-account-signing-key-file=${join(pki, "sa.key")}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    "--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
    "--enable-priority-and-fairness=false",
    // Managed clusters allow privileged containers; the chart's init container is one.
    "--allow-privileged=true",
    "--profiling=false",
    "--v=1",
  ];
  let apiserver: ChildProcess | null = null;
  const startApiServer = async (): Promise<void> => {
    const log = join(dir, "kube-apiserver.log");
    const child = await spawnLogged([join(bin, "kube-apiserver"), ...apiserverArgs], log);
    apiserver = child;
    const deadline = Date.now() + 90_000;
    while ((await readyz(server, adminToken)) !== 200) {
      if (hasExited(child)) throw new Error(`kube-apiserver ended (${endOf(child)}):\n${await logTail(log)}`);
      if (hasExited(etcd))
        throw new Error(`etcd ended (${endOf(etcd)}):\n${await logTail(join(dir, "etcd.log"))}`);
      if (Date.now() > deadline)
        throw new Error(`kube-apiserver not ready after 90 s:\n${await logTail(log)}`);
      await sleep(200);
    }
  };
  const controllers: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(controllers.map(stopChild));
    await stopChild(apiserver);
    await stopChild(etcd);
  };

  try {
    await startApiServer();
    const admin = new KubeConfig();
    admin.loadFromFile(adminKubeconfig);
    const core = admin.makeApiClient(CoreV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const sa = SERVICE_ACCOUNT;
    // The API server makes these namespaces soon after it is ready: do not race it.
    for (const name of ["default", sa.namespace])
      await core.createNamespace({ body: { metadata: { name } } }).catch(ignoreConflict);
    if (opts.cluster) {
      const common = [
        `--kubeconfig=${adminKubeconfig}`,
        "--leader-elect=false",
        "--port=0",
        "--secure-port=0",
        ...gates,
        "--v=1",
      ];
      controllers.push(
        await spawnLogged(
          [
            join(bin, "kube-controller-manager"),
            ...common,
            "--use-service-account-credentials=false",
            "--controllers=*,-cloud-node-lifecycle,-route,-service",
            `--service-account-private-key-file=${join(pki, "sa.key")}`,
            `--root-ca-file=${join(dir, "certs", "apiserver.crt")}`,
            "--allocate-node-cidrs=false",
            // Used only to allocate node CIDRs (off here), but the same as the API server's.
            serviceRange,
          ],
          join(dir, "kube-controller-manager.log"),
        ),
        await spawnLogged([join(bin, "kube-scheduler"), ...common], join(dir, "kube-scheduler.log")),
      );
    } else {
      // No controller-manager runs here: make the "default" ServiceAccount that pods in "default" need.
      await core
        .createNamespacedServiceAccount({ namespace: "default", body: { metadata: { name: "default" } } })
        .catch(ignoreConflict);
      await core.createNamespacedServiceAccount({
        namespace: sa.namespace,
        body: { metadata: { name: sa.name, namespace: sa.namespace } },
      });
      await rbac.createClusterRole({ body: { metadata: { name: "eniway" }, rules: await rbacRules() } });
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: "eniway" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "eniway" },
          subjects: [{ kind: "ServiceAccount", name: sa.name, namespace: sa.namespace }],
        },
      });
    }
    return {
      server,
      adminKubeconfig,
      admin,
      dir,
      async serviceAccountKubeconfig(file) {
        const tr = await core.createNamespacedServiceAccountToken({
          name: sa.name,
          namespace: sa.namespace,
          body: { spec: { audiences: [], expirationSeconds: 7 * 24 * 3600 } },
        });
        const token = tr.status?.token;
        if (!token) throw new Error("TokenRequest returned no token");
        await writeFile(file, kubeconfigYaml(server, `${sa.namespace}:${sa.name}`, token), { mode: 0o600 });
        return file;
      },
      async createNode(name, podCapacity) {
        await core.createNode({
          body: {
            metadata: { name, labels: { "kubernetes.io/hostname": name } },
            status: {
              capacity: { pods: String(podCapacity), cpu: "2", memory: "4Gi" },
              allocatable: { pods: String(podCapacity), cpu: "2", memory: "4Gi" },
            },
          },
        });
      },
      stopApiServer: () => stopChild(apiserver),
      pids: () =>
        [etcd.pid ?? 0, apiserver?.pid ?? 0, ...controllers.map((c) => c.pid ?? 0)].filter((p) => p > 0),
      startApiServer,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
