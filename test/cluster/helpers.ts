// What the cluster test and the cluster benchmark do with a `sandbox up
// --cluster`: kubectl with the admin kubeconfig, a Deployment of the local
// busybox image serving its hostname over HTTP, and waits on the API.

import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AppsV1Api, CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { type ClusterSandbox, helmBin } from "../../src/sandbox/clusterup.js";
import { kubeBinDir } from "../../src/sandbox/controlplane.js";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every tool the cluster tests run, or an error that says how to get it: never a skip. */
export function requireClusterTestTools(): void {
  const missing = [join(kubeBinDir(), "kube-proxy"), join(kubeBinDir(), "kubelet"), helmBin()].filter(
    (f) => !existsSync(f),
  );
  if (missing.length > 0)
    throw new Error(
      `cluster test: missing ${missing.join(", ")}; run bash test/setup.sh (it builds Kubernetes and fetches helm)`,
    );
}

export interface Kube {
  core: CoreV1Api;
  apps: AppsV1Api;
  /** kubectl with the admin kubeconfig; resolves with stdout, rejects with stderr. */
  kubectl(args: string[], timeoutMs?: number): Promise<string>;
  apply(name: string, yaml: string): Promise<void>;
  /** Pods of a label selector in "default". */
  pods(selector: string): Promise<V1Pod[]>;
  /** Waits until `count` pods of the selector are Running and Ready; returns them. */
  waitRunning(selector: string, count: number, timeoutMs?: number): Promise<V1Pod[]>;
  waitGone(selector: string, timeoutMs?: number): Promise<void>;
  /** Warning events with these reasons, in every namespace. */
  warnings(reasons: string[]): Promise<string[]>;
  /** An HTTP GET through `nc` inside a pod (busybox's static wget crashes): the body's last line. */
  httpFromPod(pod: string, host: string, port: number): Promise<string>;
}

export function kube(sb: ClusterSandbox, dir: string): Kube {
  const core = sb.controlPlane.admin.makeApiClient(CoreV1Api);
  const apps = sb.controlPlane.admin.makeApiClient(AppsV1Api);
  const kubectl = (args: string[], timeoutMs = 60_000): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        join(kubeBinDir(), "kubectl"),
        ["--kubeconfig", sb.controlPlane.adminKubeconfig, ...args],
        { timeout: timeoutMs },
        (err, stdout, stderr) =>
          err ? reject(new Error(`kubectl ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });
  const pods = async (selector: string): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: "default", labelSelector: selector })).items;
  const ready = (p: V1Pod): boolean =>
    p.status?.phase === "Running" &&
    (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");
  return {
    core,
    apps,
    kubectl,
    async apply(name, yaml) {
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, yaml);
      await kubectl(["apply", "-f", file]);
    },
    pods,
    async waitRunning(selector, count, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      let last: V1Pod[] = [];
      while (Date.now() < deadline) {
        last = await pods(selector);
        if (last.length === count && last.every(ready)) return last;
        await sleep(200);
      }
      const states = last.map((p) => `${p.metadata?.name} ${p.status?.phase} ${p.spec?.nodeName ?? "-"}`);
      throw new Error(
        `${count} pods of ${selector} not Running in ${timeoutMs / 1000} s: ${states.join("; ")}`,
      );
    },
    async waitGone(selector, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if ((await pods(selector)).length === 0) return;
        await sleep(250);
      }
      throw new Error(`pods of ${selector} still there after ${timeoutMs / 1000} s`);
    },
    async warnings(reasons) {
      const evs = (await core.listEventForAllNamespaces({ fieldSelector: "type=Warning" })).items;
      return evs
        .filter((e) => reasons.includes(e.reason ?? ""))
        .map((e) => `${e.involvedObject.kind}/${e.involvedObject.name} ${e.reason}: ${e.message}`);
    },
    async httpFromPod(pod, host, port) {
      const out = await kubectl([
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 "$0" "$1"',
        host,
        String(port),
      ]);
      return out.trim().split("\n").pop() ?? "";
    },
  };
}

/** An HTTP GET through busybox's `nc` from a network namespace of the sandbox (a node, a VPC host): the body's last line. */
export function httpFromNetns(netns: string, host: string, port: number): string {
  return execFileSync(
    "nsenter",
    [
      `--net=/run/netns/${netns}`,
      "--",
      "busybox",
      "sh",
      "-c",
      'printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc -w 3 "$0" "$1"',
      host,
      String(port),
    ],
    { encoding: "utf8", timeout: 15_000 },
  )
    .trim()
    .split("\n")
    .pop()!;
}

/** A Deployment of the local busybox image answering HTTP on 8080 with its pod name. */
export function webDeployment(o: {
  name: string;
  replicas: number;
  image: string;
  nodeSelector?: Record<string, string>;
  hostPort?: number;
}): string {
  return JSON.stringify({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: o.name, namespace: "default" },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: o.name } },
      template: {
        metadata: { labels: { app: o.name } },
        spec: {
          terminationGracePeriodSeconds: 1,
          automountServiceAccountToken: false,
          ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "ScheduleAnyway",
              labelSelector: { matchLabels: { app: o.name } },
            },
          ],
          containers: [
            {
              name: "web",
              image: o.image,
              imagePullPolicy: "Never",
              command: [
                "/bin/sh",
                "-c",
                "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
              ],
              ports: [{ containerPort: 8080, ...(o.hostPort ? { hostPort: o.hostPort } : {}) }],
            },
          ],
        },
      },
    },
  });
}
