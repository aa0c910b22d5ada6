// The daemon's HTTP client to the API server at its edges, against a small
// local HTTP server: a list read page by page (limit, continue), a watch
// whose event is split inside a UTF-8 character, a watch that goes silent
// (ended cleanly, to be watched again), a 404 read as "no such pod", and a
// bearer token sent but never echoed in an error. The whole port runs
// against a real kube-apiserver in test/kubernetes/.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKubeApi } from "../../src/kubernetes/api.js";
import type { KubeConnection } from "../../src/kubernetes/connection.js";
import { createKubeHttp } from "../../src/kubernetes/http.js";

const TOKEN = "t0ken-never-shown";
const pod = (name: string, labels: Record<string, string> = {}) => ({
  metadata: { namespace: "default", name, uid: `uid-${name}`, labels, resourceVersion: "7" },
  spec: { nodeName: "n1", containers: [] },
  status: { podIP: "10.0.0.9" },
});

describe("the API server client's HTTP edges", () => {
  let server: Server;
  let conn: KubeConnection;
  const seen: string[] = [];
  let handle: (req: IncomingMessage, res: ServerResponse) => void = () => {};

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ""}`);
      handle(req, res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    conn = {
      server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      insecure: false,
      token: () => TOKEN,
    };
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it("lists page by page from the first page's resourceVersion, with the bearer token", async () => {
    seen.length = 0;
    handle = (req, res) => {
      const url = new URL(req.url ?? "", "http://x");
      const second = url.searchParams.get("continue") === "page-2";
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          metadata: { resourceVersion: second ? "11" : "10", continue: second ? "" : "page-2" },
          items: [pod(second ? "b" : "a")],
        }),
      );
    };
    const l = await createKubeApi(conn).pods("n1").list();
    expect(l.items.map((p) => p.name)).toEqual(["a", "b"]);
    expect(l.resourceVersion).toBe("10");
    expect(seen).toEqual([
      `GET /api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=500 Bearer ${TOKEN}`,
      `GET /api/v1/pods?fieldSelector=spec.nodeName%3Dn1&limit=500&continue=page-2 Bearer ${TOKEN}`,
    ]);
  });

  it("reads a watch event split inside a UTF-8 character, and ends a silent watch cleanly", async () => {
    handle = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const line = Buffer.from(`${JSON.stringify({ type: "ADDED", object: { name: "grüße" } })}\n`);
      const cut = line.indexOf(Buffer.from("ü")) + 1; // between the two bytes of ü
      res.write(line.subarray(0, cut));
      setTimeout(() => res.write(line.subarray(cut)), 50); // then nothing more
    };
    const events: unknown[] = [];
    const w = await createKubeHttp(conn, 5000).watch("/api/v1/pods?watch=true", 300, (e) => events.push(e));
    expect(await w.done).toBeNull();
    expect(events).toEqual([{ type: "ADDED", object: { name: "grüße" } }]);
  });

  it("a pod that is not there is null; another failure names the status, never the token", async () => {
    handle = (req, res) => {
      const missing = req.url?.includes("/pods/gone");
      res.writeHead(missing ? 404 : 403, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", message: missing ? 'pods "gone" not found' : "forbidden" }));
    };
    const api = createKubeApi(conn);
    expect(await api.getPod("default", "gone")).toBeNull();
    const err = await api.getPod("default", "secret").catch((e: Error) => e);
    expect(err).toMatchObject({ status: 403 });
    expect(String(err)).toMatch(/HTTP 403: forbidden/);
    expect(String(err)).not.toContain(TOKEN);
  });
});
