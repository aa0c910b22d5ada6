// NetworkPolicy for the daemon: on when the daemon wires pods and talks to
// the API server and `networkPolicy.enabled` (the default) says so. Switched
// off, the daemon removes the table an earlier run may have left, so no rule
// outlives the setting.

import { createNftEnforcer } from "../../cni/policy/enforce.js";
import type { Logger } from "../../lib/log.js";
import type { KubeApi } from "../kubernetes/api.js";
import {
  createPolicyController,
  type LocalPod,
  type PolicyController,
  type PolicyObserver,
} from "../kubernetes/policy.js";
import type { Config } from "./config.js";

export async function nodePolicy(deps: {
  config: Config;
  kube: { api: KubeApi } | null;
  log: Logger;
  localPods(): LocalPod[];
  observer: PolicyObserver;
}): Promise<PolicyController | null> {
  const { config, log } = deps;
  if (!config.datapath.enabled) return null;
  const enforcer = createNftEnforcer(config.node.netns);
  if (!config.networkPolicy.enabled || !deps.kube) {
    await enforcer
      .remove()
      .catch((e: unknown) => log.debug("no NetworkPolicy table to remove", { error: String(e) }));
    if (deps.kube) log.info("NetworkPolicy is not enforced (networkPolicy.enabled is false)");
    return null;
  }
  return createPolicyController({
    api: deps.kube.api,
    log,
    enforcer,
    localPods: deps.localPods,
    observer: deps.observer,
  });
}
