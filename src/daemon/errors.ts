// An error the daemon answers on its socket API with a code from
// cni/facts.ts (DAEMON_ERRORS), so that callers, the plugin first, can
// branch on it.

import type { DaemonErrorCode } from "../../cni/facts.js";

export class DaemonError extends Error {
  constructor(
    readonly code: DaemonErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "DaemonError";
  }
}

export const badRequest = (message: string): DaemonError => new DaemonError("BadRequest", message);
