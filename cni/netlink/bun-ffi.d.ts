// The part of bun:ffi the netlink helper uses, for tsc (the helper runs under bun only).
declare module "bun:ffi" {
  export const FFIType: {
    readonly i32: number;
    readonly i64: number;
    readonly u64: number;
    readonly ptr: number;
    readonly cstring: number;
  };
  export function dlopen(
    path: string,
    symbols: Record<string, { args: number[]; returns: number }>,
  ): { symbols: Record<string, (...args: unknown[]) => unknown>; close(): void };
  export function ptr(view: ArrayBufferView): number;
  export const read: { i32(pointer: number, offset: number): number };
}
