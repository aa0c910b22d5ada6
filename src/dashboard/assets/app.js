// The live page of one eniway daemon: it polls /dashboard/data every 2 s and
// draws with uPlot (served by the daemon, no CDN). Plain script, no build step.

const STATES = ["assigned", "idle", "cooling", "pending", "releasing"];
const COLORS = {
  assigned: "#3f6ad8",
  idle: "#4caf50",
  cooling: "#f0ad4e",
  pending: "#8fd3ff",
  releasing: "#9b59b6",
};
const KEEP = 300; // points (10 minutes at 2 s)
const history = { t: [], pool: Object.fromEntries(STATES.map((s) => [s, []])), lat: [[], [], [], []] };
let poolChart = null;
let latencyChart = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "style") Object.assign(e.style, v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function push(list, v) {
  list.push(v);
  if (list.length > KEEP) list.shift();
}

function size(id) {
  const w = document.getElementById(id).clientWidth || 600;
  return { width: Math.max(300, w), height: 240 };
}

/**
 * Stacked areas: each band is drawn as the sum of its state and those below it,
 * the tallest first, so each lower band paints over the one above it.
 */
function poolData() {
  const sums = [];
  let acc = history.t.map(() => 0);
  for (const s of STATES) {
    acc = acc.map((a, i) => a + (history.pool[s][i] || 0));
    sums.push(acc.slice());
  }
  return [history.t, ...sums.reverse()];
}

function makePoolChart() {
  const series = [{}];
  for (const s of [...STATES].reverse())
    series.push({
      label: s,
      stroke: COLORS[s],
      fill: COLORS[s],
      value: (_u, _v, _si, idx) => (idx == null ? "-" : history.pool[s][idx]),
    });
  const opts = {
    ...size("pool-chart"),
    series,
    scales: { y: { range: (_u, _min, max) => [0, Math.max(4, max)] } },
    axes: [{}, { label: "IPs" }],
  };
  return new uPlot(opts, poolData(), document.getElementById("pool-chart"));
}

function makeLatencyChart() {
  const line = (label, stroke, dash) => ({ label, stroke, width: 2, dash, spanGaps: true });
  return new uPlot(
    {
      ...size("latency-chart"),
      series: [
        {},
        line("alloc p50", "#3f6ad8"),
        line("alloc p99", "#3f6ad8", [6, 4]),
        line("ADD p50", "#c0392b"),
        line("ADD p99", "#c0392b", [6, 4]),
      ],
      axes: [{}, { label: "ms" }],
    },
    [history.t, ...history.lat],
    document.getElementById("latency-chart"),
  );
}

function card(label, value) {
  return el("div", { class: "card" }, el("b", {}, value), label);
}

function render(d) {
  document.getElementById("node").textContent = d.node.nodeName || d.node.instanceId;
  document.getElementById("status").textContent = `updated ${new Date(d.time).toLocaleTimeString()}`;
  const p = d.pool;
  document
    .getElementById("cards")
    .replaceChildren(
      card("idle", p.idle),
      card("assigned", p.assigned),
      card("cooling", p.cooling),
      card("pending", p.pending),
      card("waiting", p.waiting),
      card("ENIs", `${d.enis.length} / ${p.limits.maxSecondaryEnis}`),
      card("capacity (pod IPs)", p.maxIps),
      card("targets min / max idle", `${p.targets.minIdle} / ${p.targets.maxIdle}`),
      card("mode / IP stack", `${p.targets.mode} / ${p.targets.ipStack}`),
      ...(d.kubernetes
        ? [card("ENIPoolReady", d.kubernetes.condition ? d.kubernetes.condition.reason : "-")]
        : []),
      ...(d.policy
        ? [
            card(
              d.policy.synced ? "NetworkPolicy: policies / rules" : "NetworkPolicy (not synced yet)",
              `${d.policy.policies} / ${d.policy.rules}`,
            ),
            card("pods isolated in / out", `${d.policy.isolated.ingress} / ${d.policy.isolated.egress}`),
            card("packets dropped in / out", `${d.policy.dropped.ingress} / ${d.policy.dropped.egress}`),
            card("pods waiting for their rules", d.policy.pending),
          ]
        : []),
    );

  push(history.t, d.time / 1000);
  for (const s of STATES) push(history.pool[s], p[s]);
  const lat = [d.latency.allocation.p50, d.latency.allocation.p99, d.latency.add.p50, d.latency.add.p99];
  for (const [i, v] of lat.entries()) push(history.lat[i], v);
  poolChart ??= makePoolChart();
  latencyChart ??= makeLatencyChart();
  poolChart.setData(poolData());
  latencyChart.setData([history.t, ...history.lat]);

  document.getElementById("enis").replaceChildren(
    ...d.enis.map((e) => {
      // Addresses an ENI can carry: its slots, each (but the primary IP's) a /28 of 16 in prefix mode.
      const cap = p.targets.mode === "prefix" ? 1 + (p.limits.ipsPerEni - 1) * 16 : p.limits.ipsPerEni;
      const extra = [
        ...(e.prefixes.length ? [`${e.prefixes.length} prefixes (${e.prefixes.join(", ")})`] : []),
        ...(p.targets.ipStack === "dual" ? [`${e.ipv6s} IPv6`] : []),
      ];
      const seg = (cls, n) =>
        el("span", { class: cls, title: `${cls}: ${n}`, style: { width: `${(100 * n) / cap}%` } });
      return el(
        "div",
        { class: "eni", "data-eni": e.eniId },
        el(
          "div",
          {},
          [`${e.eniId} · ${e.vSwitchId} · ${e.phase} · ${e.ips.assigned}/${cap} assigned`, ...extra].join(
            " · ",
          ),
        ),
        el(
          "div",
          { class: "bar" },
          seg("assigned", e.ips.assigned),
          seg("idle", e.ips.idle),
          seg("cooling", e.ips.cooling),
          seg("releasing", e.ips.releasing),
        ),
      );
    }),
  );
  document
    .querySelector("#vswitches tbody")
    .replaceChildren(
      ...d.vSwitches.map((v) =>
        el(
          "tr",
          {},
          el("td", {}, v.vSwitchId),
          el("td", {}, v.available),
          el("td", {}, v.poolIps),
          el(
            "td",
            v.blockedUntil ? { class: "blocked" } : {},
            v.blockedUntil ? `blocked until ${new Date(v.blockedUntil).toLocaleTimeString()}` : "ok",
          ),
        ),
      ),
    );
  document
    .querySelector("#cloud tbody")
    .replaceChildren(
      ...d.cloud.map((c) =>
        el(
          "tr",
          {},
          el("td", {}, c.action),
          el("td", {}, c.calls),
          el("td", c.errors ? { class: "blocked" } : {}, c.errors),
          el("td", {}, c.p50Ms ?? "-"),
        ),
      ),
    );
  document
    .getElementById("events")
    .replaceChildren(
      ...d.events.map((e) =>
        el(
          "li",
          { class: e.kind },
          `${new Date(e.at).toLocaleTimeString()} ${e.kind} ${e.subject} ${e.detail}`,
        ),
      ),
    );
}

async function poll() {
  try {
    const r = await fetch("/dashboard/data", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
  } catch (e) {
    document.getElementById("status").textContent = `cannot reach the daemon: ${e.message}`;
  }
}

window.addEventListener("resize", () => {
  if (poolChart) poolChart.setSize(size("pool-chart"));
  if (latencyChart) latencyChart.setSize(size("latency-chart"));
});
poll();
setInterval(poll, 2000);
