// Where the daemon finds the API server and its credentials: a kubeconfig's
// current context (token, tokenFile, client certificate, CA, insecure), the
// pod's ServiceAccount, and the refusals (exec plugins, a missing context)
// that never echo a credential. The requests themselves run against a real
// API server in test/kubernetes/ and, in a cluster, test/cluster/.

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { fromKubeconfig, inCluster } from "../../src/kubernetes/connection.js";

const SECRET = "s3cr3t-token-value";

describe("the API server's address and credentials", () => {
  let dir = "";
  const kubeconfig = async (name: string, user: object, cluster: object = {}): Promise<string> => {
    const file = join(dir, name);
    await writeFile(
      file,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443", ...cluster } }],
        users: [{ name: "u", user }],
        contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
        "current-context": "ctx",
      }),
    );
    return file;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "eniway-kubeconfig-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a kubeconfig with a token and its CA inline", async () => {
    const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const c = fromKubeconfig(
      await kubeconfig(
        "inline",
        { token: SECRET },
        { "certificate-authority-data": Buffer.from(ca).toString("base64") },
      ),
    );
    expect(c.server).toBe("https://10.0.0.1:6443");
    expect(c.token()).toBe(SECRET);
    expect(c.ca?.toString()).toBe(ca);
    expect(c.insecure).toBe(false);
  });

  it("files relative to the kubeconfig: a tokenFile, a client certificate and key, insecure-skip-tls-verify", async () => {
    await writeFile(join(dir, "token"), `${SECRET}\n`);
    await writeFile(join(dir, "client.crt"), "CERT");
    await writeFile(join(dir, "client.key"), "KEY");
    const c = fromKubeconfig(
      await kubeconfig(
        "files",
        { tokenFile: "token", "client-certificate": "client.crt", "client-key": join(dir, "client.key") },
        { "insecure-skip-tls-verify": true },
      ),
    );
    expect(c.token()).toBe(SECRET);
    expect(c.cert?.toString()).toBe("CERT");
    expect(c.key?.toString()).toBe("KEY");
    expect(c.insecure).toBe(true);
  });

  it("checks the certificate against tls-server-name when the kubeconfig gives one", async () => {
    const c = fromKubeconfig(
      await kubeconfig("sni", { token: SECRET }, { "tls-server-name": "kubernetes.default" }),
    );
    expect(c.serverName).toBe("kubernetes.default");
  });

  it("refuses a proxy-url and a client certificate without its key, by name", async () => {
    const proxied = await kubeconfig("proxy", { token: SECRET }, { "proxy-url": "http://proxy:3128" });
    expect(() => fromKubeconfig(proxied)).toThrow(/proxy-url is not supported/);
    await writeFile(join(dir, "lonely.crt"), "CERT");
    const lonely = await kubeconfig("lonely", { "client-certificate": "lonely.crt" });
    expect(() => fromKubeconfig(lonely)).toThrow(/client certificate without its key/);
  });

  it("refuses an exec plugin, a missing context and a server that is no URL, never echoing a credential", async () => {
    const exec = await kubeconfig("exec", { exec: { command: "aws", args: [SECRET] } });
    expect(() => fromKubeconfig(exec)).toThrow(
      /user "u" logs in with exec, which the daemon does not support/,
    );
    const noContext = join(dir, "no-context");
    await writeFile(
      noContext,
      stringify({ users: [{ name: "u", user: { token: SECRET } }], "current-context": "x" }),
    );
    expect(() => fromKubeconfig(noContext)).toThrow(/no context named "x"/);
    const badServer = await kubeconfig("bad-server", { token: SECRET }, { server: "ftp://x" });
    expect(() => fromKubeconfig(badServer)).toThrow(/is not http\(s\):\/\/HOST:PORT/);
    const broken = join(dir, "broken");
    await writeFile(broken, `users: [{token: ${SECRET}\n  - ]`);
    for (const file of [exec, noContext, badServer, broken]) {
      let message = "";
      try {
        fromKubeconfig(file);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).not.toBe("");
      expect(message).not.toContain(SECRET);
    }
  });

  it("in a pod: the ServiceAccount's token and CA, the server from the environment (IPv6 in brackets)", async () => {
    const sa = join(dir, "serviceaccount");
    await mkdir(sa);
    await writeFile(join(sa, "token"), SECRET);
    await writeFile(join(sa, "ca.crt"), "CA");
    const env = { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" };
    const c = inCluster(env, sa);
    expect(c.server).toBe("https://[fd00::1]:443");
    expect(c.token()).toBe(SECRET);
    expect(c.ca?.toString()).toBe("CA");
    expect(() => inCluster({}, sa)).toThrow(/KUBERNETES_SERVICE_HOST/);
  });
});
