// Label selectors as the Kubernetes API defines them: every matchLabels pair
// and every matchExpressions requirement must hold; an empty selector matches
// everything. An operator the API does not know matches nothing (a policy
// that cannot be read must not open traffic).

import type { LabelSelector } from "./model.js";

export function selects(sel: LabelSelector, labels: Record<string, string>): boolean {
  const want = sel.matchLabels;
  if (want) for (const k in want) if (labels[k] !== want[k]) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(labels[e.key]!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[e.key]!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
