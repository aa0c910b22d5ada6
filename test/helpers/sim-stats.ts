// The simulator's /admin/stats as the tests read it: calls and errors per action.

export interface SimStats {
  calls: Record<string, number>;
  /** action → error code → how many times the simulator answered it (faults included). */
  errors: Record<string, Record<string, number>>;
}

/** `endpoint`: the simulator's base URL. */
export async function readSimStats(endpoint: string): Promise<SimStats> {
  const r = await fetch(`${endpoint}/admin/stats`);
  if (!r.ok) throw new Error(`${endpoint}/admin/stats: HTTP ${r.status}`);
  return (await r.json()) as SimStats;
}

/** All calls of an action, failed ones included. */
export const calls = (s: SimStats, action: string): number => s.calls[action] ?? 0;
export const errors = (s: SimStats, action: string, code: string): number => s.errors[action]?.[code] ?? 0;

/** Every error answered, all actions and codes together. */
export const errorTotal = (s: SimStats): number =>
  Object.values(s.errors).reduce((sum, e) => sum + Object.values(e).reduce((a, b) => a + b, 0), 0);

/** The error codes answered, whatever the action. */
export const errorCodes = (s: SimStats): Set<string> =>
  new Set(Object.values(s.errors).flatMap((e) => Object.keys(e)));
