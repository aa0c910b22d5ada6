// Reading a Prometheus text exposition in tests and benchmarks: samples of a
// family, a summed value, and a quantile from a histogram's buckets (linear
// within a bucket, as PromQL's histogram_quantile does).

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Samples of one metric (`name` exactly: a histogram's `_bucket`, `_sum` or `_count` series by their own name). */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[kv[1]!] = kv[2]!;
    out.push({ labels, value: Number(m[4]) });
  }
  return out;
}

const matches = (s: Sample, labels: Record<string, string>): boolean =>
  Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** The sum of the samples whose labels include `labels`. */
export function value(text: string, name: string, labels: Record<string, string> = {}): number {
  return samples(text, name)
    .filter((s) => matches(s, labels))
    .reduce((a, s) => a + s.value, 0);
}

/** The q-quantile of histogram `name` (without `_bucket`) over the series matching `labels`, or NaN. */
export function histogramQuantile(
  text: string,
  name: string,
  q: number,
  labels: Record<string, string> = {},
): number {
  const byLe = new Map<number, number>();
  for (const s of samples(text, `${name}_bucket`)) {
    if (!matches(s, labels)) continue;
    const le = s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(s.labels.le);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  const buckets = [...byLe.entries()].sort(([a], [b]) => a - b);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Number.POSITIVE_INFINITY) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
