// Small object helpers shared by the layers.

/** The object without the given keys (a copy). */
export function without<T extends object, K extends keyof T>(o: T, ...keys: K[]): Omit<T, K> {
  const copy: Partial<T> = { ...o };
  for (const k of keys) delete copy[k];
  return copy as Omit<T, K>;
}
