// /dashboard of a sandbox node in headless Chromium (Debian's, driven by
// playwright-core): no console error, no request leaves the node's loopback
// address, both charts draw (their canvases hold non-background pixels), and
// a pod added during the test shows up on the page within a few seconds. The
// screenshot is kept as an artifact (docs/dashboard.png is one of them).

import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../lib/log.js";
import { runPlugin } from "../../src/sandbox/plugin.js";
import { type Sandbox, sandboxUp, sandboxWorld } from "../../src/sandbox/sandbox.js";
import { sh } from "../runtimes/containerd.js";

const PREFIX = `ewd${process.pid % 100000}`;
const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = join(tmpdir(), "eniway-artifacts");

/** The little of the browser's DOM the test reads. */
interface BrowserDocument {
  querySelectorAll(selector: "canvas"): Iterable<{
    width: number;
    height: number;
    getContext(kind: "2d"): {
      getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
    };
  }>;
}

describe("the dashboard in a real browser", () => {
  let sb: Sandbox;
  let dir: string;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const hosts = new Set<string>();
  const POD_NS = `${PREFIX}-pod`;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} not found: apt-get install -y chromium (bash test/setup.sh installs it)`);
    dir = await mkdtemp(join(tmpdir(), "eniway-dash-"));
    sb = await sandboxUp({ dir, nodes: 1, world: sandboxWorld(1, PREFIX), sets: [], log: silentLogger });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => hosts.add(new URL(r.url()).host));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await sb?.stop();
    try {
      sh("ip", "netns", "del", POD_NS);
    } catch {}
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("draws the pool and its latency, stays on loopback, and shows a new pod within seconds", async () => {
    const node = sb.file.nodes[0]!;
    const origin = new URL(node.http).host;
    await page.goto(`${node.http}/dashboard`);
    await page.waitForSelector("#pool-chart canvas");
    await page.locator("#enis .eni").first().waitFor({ timeout: 20_000 });

    sh("ip", "netns", "add", POD_NS);
    const add = await runPlugin(node, {
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "ctr-dashboard",
      CNI_NETNS: `/var/run/netns/${POD_NS}`,
      CNI_IFNAME: "eth0",
    });
    expect(add.code, add.out).toBe(0);
    const ip = (JSON.parse(add.out) as { ips: { address: string }[] }).ips[0]!.address.split("/")[0]!;
    const t0 = Date.now();
    await expect
      .poll(() => page.locator("#events").textContent(), { timeout: 10_000, interval: 100 })
      .toContain(ip);
    console.log(`a new pod reached the page after ${Date.now() - t0} ms`);
    await expect
      .poll(async () => page.locator("#cards").textContent(), { timeout: 10_000 })
      .toMatch(/1\s*assigned/);
    await page.waitForTimeout(2500); // a few more points on the charts

    // Runs in the browser (this file has no DOM types: the shapes it touches are declared above).
    const painted = await page.evaluate(() =>
      [...(globalThis as unknown as { document: BrowserDocument }).document.querySelectorAll("canvas")].map(
        (c) => {
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if ((d[i] ?? 0) > 0) n++;
          return n;
        },
      ),
    );

    expect(painted).toHaveLength(2);
    for (const n of painted) expect(n).toBeGreaterThan(1000);
    await mkdir(ARTIFACTS, { recursive: true });
    const shot = await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    expect(shot.length).toBeGreaterThan(20_000);

    expect(errors).toEqual([]);
    expect([...hosts]).toEqual([origin]);

    const del = await runPlugin(node, {
      CNI_COMMAND: "DEL",
      CNI_CONTAINERID: "ctr-dashboard",
      CNI_NETNS: `/var/run/netns/${POD_NS}`,
      CNI_IFNAME: "eth0",
    });
    expect(del.code, del.out).toBe(0);
  }, 90_000);
});
