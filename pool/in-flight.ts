// The pool's cloud operations in flight: the ENIs they run on (busy), the
// IPs on their way to each, the ENIs being created, and a way to wait for
// them all.

export interface InFlight {
  /**
   * Run a cloud operation as the pool's own: on `eniId` (marked busy, with
   * `pendingIps` on their way), or creating an ENI when `eniId` is null.
   */
  track<T>(eniId: string | null, pendingIps: number, work: () => Promise<T>): Promise<T>;
  busy(): ReadonlySet<string>;
  pendingIps(eniId: string): number;
  /** The ENIs being created: a placeholder id each, with the IPs it will bring. */
  creating(): [placeholder: string, ips: number][];
  /** Resolves once nothing runs. */
  idle(): Promise<void>;
}

/** `settled`: told after each operation ends, however it ended. */
export function createInFlight(settled: () => void): InFlight {
  const busy = new Set<string>();
  const pendingByEni = new Map<string, number>();
  const creating = new Map<string, number>();
  const running = new Set<Promise<unknown>>();
  let seq = 0;

  const track = <T>(eniId: string | null, pendingIps: number, work: () => Promise<T>): Promise<T> => {
    const placeholder = eniId === null ? `creating-${++seq}` : null;
    if (placeholder) creating.set(placeholder, pendingIps);
    else {
      busy.add(eniId!);
      pendingByEni.set(eniId!, pendingIps);
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
    pendingIps: (eniId) => pendingByEni.get(eniId) ?? 0,
    creating: () => [...creating],
    async idle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  };
}
