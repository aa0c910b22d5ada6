// A NetworkPolicy for the policy tests: ingress-only and empty unless the spec says more.

import type { Policy } from "../../cni/policy/model.js";

export const policy = (ns: string, name: string, spec: Partial<Policy>): Policy => ({
  namespace: ns,
  name,
  podSelector: {},
  policyTypes: ["Ingress"],
  ingress: [],
  egress: [],
  ...spec,
});
