// The pool's cloud operations in flight: the ENIs they run on (busy), the
// IPs and prefixes on their way to each, the ENIs being created, and a way
// to wait for them all.

/** What an operation brings: single IPs and IPv4 prefixes. */
export interface Pending {
  ips: number;
  prefixes: number;
}

export const NOTHING_PENDING: Pending = { ips: 0, prefixes: 0 };

export interface InFlight {
  /**
   * Run a cloud operation as the pool's own: on `eniId` (marked busy, with
   * `pending` on its way), or creating an ENI when `eniId` is null.
   */
  track<T>(eniId: string | null, pending: Pending, work: () => Promise<T>): Promise<T>;
  busy(): ReadonlySet<string>;
  pending(eniId: string): Pending;
  /** The ENIs being created: a placeholder id each, with what it will bring. */
  creating(): [placeholder: string, pending: Pending][];
  /** Resolves once nothing runs. */
  idle(): Promise<void>;
}

/** `settled`: told after each operation ends, however it ended. */
export function createInFlight(settled: () => void): InFlight {
  const busy = new Set<string>();
  const pendingByEni = new Map<string, Pending>();
  const creating = new Map<string, Pending>();
  const running = new Set<Promise<unknown>>();
  let seq = 0;

  const track = <T>(eniId: string | null, pending: Pending, work: () => Promise<T>): Promise<T> => {
    const placeholder = eniId === null ? `creating-${++seq}` : null;
    if (placeholder) creating.set(placeholder, pending);
    else {
      busy.add(eniId!);
      pendingByEni.set(eniId!, pending);
    }
    const p = work().finally(() => {
      if (placeholder) creating.delete(placeholder);
      else {
        busy.delete(eniId!);
        pendingByEni.delete(eniId!);
      }
      running.delete(p);
      settled();
    });
    running.add(p);
    return p;
  };

  return {
    track,
    busy: () => busy,
    pending: (eniId) => pendingByEni.get(eniId) ?? NOTHING_PENDING,
    creating: () => [...creating],
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}
