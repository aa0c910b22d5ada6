// The Helm chart, statically, with helm 3.17 (test/helm.sh): lint --strict;
// `helm template` with several value sets renders a daemon configuration
// that the daemon itself accepts (`eniway daemon --check-config`), the
// ClusterRole is exactly files/clusterrole-rules.yaml, credentials go to a
// Secret and never to the ConfigMap, the DaemonSet has what a CNI daemon
// needs; values.schema.json refuses bad values before anything is applied,
// the same values the daemon refuses (its `config` part is the daemon's schema).

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { isObject } from "../../lib/json.js";
import { BUILT, DAEMON_NODE_FLAGS, packageRoot } from "../../lib/process.js";
import { isChartOwned } from "../../src/daemon/chart-schema.js";
import { applyOverrides, parseConfig } from "../../src/daemon/config.js";
import { helmBin } from "../../src/sandbox/clusterup.js";
import { kubeBinDir, startControlPlane } from "../../src/sandbox/controlplane.js";

const HELM = helmBin();
const CHART = join(packageRoot(), "charts", "eniway");

type Obj = {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

function run(bin: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { maxBuffer: 16 << 20 }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

async function render(sets: string[], flags: string[] = []): Promise<Obj[]> {
  const r = await run(HELM, [
    "template",
    "eniway",
    CHART,
    "-n",
    "kube-system",
    ...sets.flatMap((s) => ["--set", s]),
    ...flags,
  ]);
  if (r.code !== 0) throw new Error(`helm template failed: ${r.err}`);
  return parseAllDocuments(r.out)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

/** The daemon's configuration in the rendered ConfigMap. */
function renderedConfig(objs: Obj[]): string {
  return (find(objs, "ConfigMap", "eniway-config") as Obj & { data: Record<string, string> }).data[
    "config.yaml"
  ]!;
}

/** A daemon configuration without the keys the chart sets itself: what `config` may hold. */
function userPart(config: Record<string, unknown>, prefix = ""): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isChartOwned(path)) continue;
    out[key] = isObject(value) ? userPart(value, path) : value;
  }
  return out;
}

const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(`no ${kind} ${name} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return o;
};

interface Container {
  name: string;
  command?: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  securityContext?: { capabilities?: { add?: string[]; drop?: string[] }; privileged?: boolean };
  volumeMounts: { name: string; mountPath: string; mountPropagation?: string }[];
  livenessProbe?: { httpGet: { path: string; host: string } };
  readinessProbe?: { httpGet: { path: string; host: string } };
}

describe("the Helm chart", () => {
  let dir: string;

  beforeAll(async () => {
    if (!existsSync(HELM))
      throw new Error(`helm not found at ${HELM}: run bash test/helm.sh (bash test/setup.sh does)`);
    dir = await mkdtemp(join(tmpdir(), "eniway-chart-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("passes helm lint --strict", async () => {
    const r = await run(HELM, ["lint", "--strict", CHART]);
    expect(r.out + r.err).toContain("0 chart(s) failed");
    expect(r.code).toBe(0);
  });

  const valueSets: [string, string[]][] = [
    ["defaults (the RAM role)", []],
    [
      "an AccessKey made into a Secret",
      ["credentials.accessKeyId=LTAI-chart", "credentials.accessKeySecret=chart-secret-xyz"],
    ],
    [
      "an existing Secret, monitors, other paths",
      [
        "credentials.existingSecret=my-ak",
        "metrics.listen=0.0.0.0:9470",
        "metrics.serviceMonitor.enabled=true",
        "metrics.podMonitor.enabled=true",
        "paths.cniBinDir=/home/kubernetes/bin",
        "paths.stateDir=/data/eniway",
        "config.pool.minIdle=4",
        "config.pool.maxIdle=12",
        "config.eni.vSwitchIds={vsw-a,vsw-b}",
        "credentials.ramRole=EniwayRole",
      ],
    ],
  ];

  for (const [what, sets] of valueSets)
    it(`renders a configuration the daemon accepts: ${what}`, async () => {
      const objs = await render(sets);
      const text = renderedConfig(objs);
      const config = parseConfig(parseYaml(text));
      expect(config.kubernetes.enabled).toBe(true);
      expect(config.cni.confDir).toBe("/host/cni/net.d");
      expect(config.socket).toBe("/run/eniway/eniway.sock");
      const file = join(dir, "config.yaml");
      await writeFile(file, text);
      const check = await run(process.execPath, [BUILT.cli, "daemon", "--check-config", file]);
      expect(check.err).toBe("");
      expect(check.out).toBe(`${file}: valid\n`);
      // Credentials never in the ConfigMap.
      expect(text).not.toMatch(/accessKey|chart-secret/);
      const useSecret = sets.some(
        (s) => s.startsWith("credentials.accessKeyId") || s.startsWith("credentials.existingSecret"),
      );
      if (useSecret) expect(config.cloud.credentialsFile).toBe("/etc/eniway/credentials/credentials.json");
      else expect(config.cloud.credentialsFile).toBe("");
      const secret = objs.find((o) => o.kind === "Secret");
      if (sets.some((s) => s.startsWith("credentials.accessKeyId")))
        expect(
          JSON.parse(
            (secret as Obj & { stringData: Record<string, string> }).stringData["credentials.json"]!,
          ),
        ).toEqual({
          accessKeyId: "LTAI-chart",
          accessKeySecret: "chart-secret-xyz",
        });
      else expect(secret).toBeUndefined();

      const ds = find(objs, "DaemonSet", "eniway") as Obj & {
        spec: {
          updateStrategy: { rollingUpdate: { maxUnavailable: string } };
          template: {
            spec: {
              hostNetwork: boolean;
              priorityClassName: string;
              serviceAccountName: string;
              tolerations: { operator: string }[];
              initContainers: Container[];
              containers: Container[];
              volumes: { name: string; hostPath?: { path: string }; secret?: { secretName: string } }[];
            };
          };
        };
      };
      const pod = ds.spec.template.spec;
      expect(pod.hostNetwork).toBe(true);
      expect(pod.priorityClassName).toBe("system-node-critical");
      expect(pod.serviceAccountName).toBe("eniway");
      expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
      expect(ds.spec.updateStrategy.rollingUpdate.maxUnavailable).toBe("10%");
      const daemon = pod.containers[0]!;
      // The daemon runs with the Node flags the sandbox uses and the soak bench measured.
      expect(daemon.command).toEqual([
        "node",
        ...DAEMON_NODE_FLAGS,
        "/opt/eniway/dist/src/cli/main.js",
        "daemon",
        "--config",
        "/etc/eniway/config.yaml",
      ]);
      expect(daemon.env).toContainEqual({
        name: "NODE_NAME",
        valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } },
      });
      expect(daemon.securityContext?.privileged).toBeUndefined();
      expect(daemon.securityContext?.capabilities).toEqual({
        add: ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"],
        drop: ["ALL"],
      });
      expect(daemon.livenessProbe?.httpGet).toMatchObject({ path: "/healthz", host: "127.0.0.1" });
      expect(daemon.readinessProbe?.httpGet).toMatchObject({ path: "/readyz", host: "127.0.0.1" });
      expect(daemon.volumeMounts).toContainEqual({
        name: "netns",
        mountPath: "/var/run/netns",
        mountPropagation: "HostToContainer",
      });
      expect(daemon.volumeMounts.map((m) => m.mountPath)).toEqual(
        expect.arrayContaining([
          "/etc/eniway",
          "/host/cni/net.d",
          "/run/eniway",
          config.stateDir,
          "/run/xtables.lock",
        ]),
      );
      // The init container alone is privileged: it writes the node's sysctls (read-only /proc/sys otherwise).
      const init = pod.initContainers[0]!;
      expect(init.volumeMounts).toEqual([{ name: "cni-bin", mountPath: "/host/cni/bin" }]);
      expect(init.securityContext?.privileged).toBe(true);
      expect(init.command).toEqual([
        "node",
        "/opt/eniway/dist/src/cli/main.js",
        "node-init",
        "--cni-bin-dir",
        "/host/cni/bin",
      ]);
      const hostPath = (name: string): string | undefined =>
        pod.volumes.find((v) => v.name === name)?.hostPath?.path;
      expect(hostPath("cni-bin")).toBe(
        sets.includes("paths.cniBinDir=/home/kubernetes/bin") ? "/home/kubernetes/bin" : "/opt/cni/bin",
      );
      expect(hostPath("state-dir")).toBe(config.stateDir);
      if (sets.includes("credentials.existingSecret=my-ak"))
        expect(pod.volumes.find((v) => v.name === "credentials")?.secret?.secretName).toBe("my-ak");
      expect(objs.some((o) => o.kind === "ServiceMonitor")).toBe(
        sets.includes("metrics.serviceMonitor.enabled=true"),
      );
      expect(objs.some((o) => o.kind === "PodMonitor")).toBe(
        sets.includes("metrics.podMonitor.enabled=true"),
      );
    });

  it("binds exactly the rules of files/clusterrole-rules.yaml, and ships the Grafana dashboard", async () => {
    const objs = await render([]);
    const role = find(objs, "ClusterRole", "eniway") as Obj & { rules: unknown[] };
    const rules = parseYaml(
      await readFile(join(CHART, "files", "clusterrole-rules.yaml"), "utf8"),
    ) as unknown[];
    expect(role.rules).toEqual(rules);
    const binding = find(objs, "ClusterRoleBinding", "eniway") as Obj & { subjects: unknown[] };
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "eniway", namespace: "kube-system" }]);
    const dash = find(objs, "ConfigMap", "eniway-grafana-dashboard") as Obj & {
      data: Record<string, string>;
    };
    expect(dash.metadata.labels?.grafana_dashboard).toBe("1");
    expect(JSON.parse(dash.data["eniway-pool.json"]!)).toEqual(
      JSON.parse(await readFile(join(CHART, "dashboards", "eniway-pool.json"), "utf8")),
    );
  });

  it("is accepted by a real kube-apiserver 1.20 (server-side dry run, with its validation and admission)", async () => {
    const cp = await startControlPlane(join(dir, "kubernetes"));
    try {
      const rendered = await run(HELM, [
        "template",
        "eniway",
        CHART,
        "-n",
        "kube-system",
        "--set",
        "credentials.accessKeyId=LTAI-x",
        "--set",
        "credentials.accessKeySecret=y",
      ]);
      expect(rendered.code, rendered.err).toBe(0);
      const manifest = join(dir, "eniway.yaml");
      await writeFile(manifest, rendered.out);
      const r = await run(join(kubeBinDir(), "kubectl"), [
        "--kubeconfig",
        cp.adminKubeconfig,
        "apply",
        "--dry-run=server",
        "-f",
        manifest,
      ]);
      // The control plane already holds the sandbox's ServiceAccount and RBAC (the same objects):
      // kubectl only warns that they were not made by `apply`.
      const warnings = r.err
        .split("\n")
        .filter(
          (l) => l && !/missing the kubectl.kubernetes.io\/last-applied-configuration annotation/.test(l),
        );
      expect(warnings).toEqual([]);
      expect(r.code).toBe(0);
      for (const kind of [
        "serviceaccount/eniway",
        "clusterrole.rbac.authorization.k8s.io/eniway",
        "configmap/eniway-config",
        "secret/eniway-credentials",
        "daemonset.apps/eniway",
      ])
        expect(r.out).toContain(kind);
    } finally {
      await cp.stop();
    }
  }, 120_000);

  // The same values through the daemon (as --set of its own) and through helm (--set-json): both refuse.
  it.each([
    ["cloud.endpoint", "https://host?x=1"],
    ["cloud.endpoint", "https://ecs.aliyuncs.com/path"],
    ["cloud.metadataEndpoint", "http://100.100.100.200/#x"],
    ["cloud.regionId", "Hangzhou"],
    ["cloud.timeoutSeconds", 0],
    ["cloud.rateLimits", { Bogus: { qps: 1, burst: 1 } }],
    ["cloud.rateLimits", { CreateNetworkInterface: { qps: 1 } }],
    ["eni.securityGroupIds", ["sg bad"]],
    ["eni.vSwitchIds", ["subnet-1"]],
    ["eni.tags", { "acs:x": "y" }],
    ["eni.tags", { "AliYun-x": "y" }],
    ["eni.tags", { x: "acs:y" }],
    ["datapath.mtu", 9001],
    ["datapath.repairSeconds", 0],
    ["kubernetes.checkSeconds", 0.5],
    ["clusterId", "-x"],
    ["log.level", "trace"],
  ])("refuses %s = %j, as the daemon does", async (key, value) => {
    const raw = applyOverrides({}, [`${key}=${JSON.stringify(value)}`]);
    expect(() => parseConfig(raw)).toThrow(
      expect.objectContaining({ name: "SchemaError", path: expect.stringMatching(`^${key}`) }),
    );
    const r = await run(HELM, [
      "template",
      "eniway",
      CHART,
      "--set-json",
      `config.${key}=${JSON.stringify(value)}`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(`- config.${key}`);
  });

  it("accepts what the daemon takes: keys the schema once refused, every key of the examples", async () => {
    const sets = [
      "config.cloud.timeoutSeconds=5",
      "config.datapath.mtu=9000",
      "config.datapath.repairSeconds=30",
      "config.kubernetes.checkSeconds=10",
      "config.cloud.endpoint=https://ecs-vpc.cn-hangzhou.aliyuncs.com",
      "config.eni.securityGroupIds={sg-a,sg-b}",
    ];
    const config = parseConfig(parseYaml(renderedConfig(await render(sets))));
    expect(config.cloud.timeoutSeconds).toBe(5);
    expect(config.datapath).toEqual({ enabled: true, mtu: 9000, repairSeconds: 30 });
    expect(config.kubernetes.checkSeconds).toBe(10);
    expect(config.eni.securityGroupIds).toEqual(["sg-a", "sg-b"]);

    // The example of every key, and values.yaml's commented-out example under `config: {}`.
    const example = parseYaml(await readFile(join(packageRoot(), "docs/eniway.example.yaml"), "utf8"));
    const chartValues = await readFile(join(CHART, "values.yaml"), "utf8");
    const commented = /^config: \{\}\n((?: {2}#.*\n)+)/m.exec(chartValues)?.[1] ?? "";
    expect(commented).not.toBe("");
    for (const config of [
      userPart(example as Record<string, unknown>),
      parseYaml(commented.replace(/^ {2}# /gm, "")),
    ]) {
      const values = join(dir, "config-values.yaml");
      await writeFile(values, JSON.stringify({ config }));
      expect(parseConfig(parseYaml(renderedConfig(await render([], ["-f", values]))))).toMatchObject(config);
    }
  });

  it.each([
    ["config.pool.minIdle=two", /config\.pool\.minIdle: Invalid type/],
    ["config.pool.maxIdle=-1", /config\.pool\.maxIdle: Must be greater than or equal to 0/],
    ["config.pool.bogus=1", /config\.pool: Additional property bogus is not allowed/],
    ["metrics.listen=everywhere", /metrics\.listen: Does not match pattern/],
    ["config.cloud.endpoint=https://host?x=1", /config\.cloud\.endpoint: Does not match pattern/],
    ["config.eni.securityGroupIds={sg bad}", /config\.eni\.securityGroupIds\.0: Does not match pattern/],
    ["image.pullPolicy=Sometimes", /image\.pullPolicy/],
  ])("refuses %s before anything is applied", async (set, why) => {
    const r = await run(HELM, ["template", "eniway", CHART, "--set", set]);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(why);
  });
});
