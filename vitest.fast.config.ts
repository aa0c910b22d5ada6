// `npm run test:fast`: lint, types, and the tests that need neither root nor a real runtime
// (no network namespaces, nft, containerd, podman, Kubernetes or Chromium):
// pure decisions, the simulator over HTTP with pop-core, the pool against
// it, the store on disk, the chart with helm, the CLI. The whole suite is
// `npm test` (vitest.config.ts).

import { defineConfig } from "vitest/config";
import base from "./vitest.config.js";

export const FAST = [
  "test/unit/**/*.test.ts",
  "test/pool/**/*.test.ts",
  "test/contract/**/*.test.ts",
  "test/chart/**/*.test.ts",
  "test/property/**/*.test.ts",
  "test/daemon/config.test.ts",
  "test/daemon/conflist.test.ts",
  "test/datapath/repair-plan.test.ts",
  "test/kubernetes/decide.test.ts",
  "test/cli.test.ts",
  "test/layers.test.ts",
  "test/package.test.ts",
];

// The global setup builds dist/ (tsc, so the types are checked, and the plugin): the CLI tests run it.
export default defineConfig({ ...base, test: { ...base.test, include: FAST } });
