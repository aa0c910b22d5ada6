// Ordering strings by their code units: deterministic, and free of the ICU
// collation data that `localeCompare` makes the process load (several MB of
// the daemon's resident memory, for ids that are ASCII anyway).

/** a before b: -1, after: 1, equal: 0. */
export const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
