// A unix-socket connection for the plugin's one request. Compiled with bun,
// it uses Bun.connect: importing node:net costs the plugin about 6 ms of
// start-up, which every CNI call would pay. Anywhere else (tsc, a Node.js
// run) it loads node:net on first use.

export interface UnixHandlers {
  data(chunk: Buffer): void;
  /** The peer ended or the connection closed. */
  closed(): void;
  /** Could not connect, or the connection broke; `code` as errno names it (ENOENT, ECONNREFUSED…). */
  failed(code: string): void;
}

export interface UnixConnection {
  destroy(): void;
}

/** The part of bun's socket API used here. */
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
}
interface BunRuntime {
  connect(options: {
    unix: string;
    socket: {
      open(s: BunSocket): void;
      data(s: BunSocket, chunk: Uint8Array): void;
      drain(s: BunSocket): void;
      close(s: BunSocket): void;
      end(s: BunSocket): void;
      error(s: BunSocket, e: Error & { code?: string }): void;
      connectError(s: BunSocket, e: Error & { code?: string }): void;
    };
  }): Promise<BunSocket>;
}

const bun = (globalThis as { Bun?: BunRuntime }).Bun;

/** Connects to `path`, writes `request` once connected, and reports what comes back. */
export function connectUnix(path: string, request: Buffer, h: UnixHandlers): UnixConnection {
  return bun ? viaBun(bun, path, request, h) : viaNode(path, request, h);
}

function viaBun(b: BunRuntime, path: string, request: Buffer, h: UnixHandlers): UnixConnection {
  let sock: BunSocket | null = null;
  let gone = false;
  let pending = new Uint8Array(request);
  const flush = (s: BunSocket): void => {
    if (pending.length === 0) return;
    const n = s.write(pending);
    if (n > 0) pending = pending.subarray(n);
  };
  const code = (e: Error & { code?: string }): string => e.code ?? e.message;
  b.connect({
    unix: path,
    socket: {
      open(s) {
        sock = s;
        if (gone) s.terminate();
        else flush(s);
      },
      data: (_s, chunk) => h.data(Buffer.from(chunk)),
      drain: flush,
      close: () => h.closed(),
      end: () => h.closed(),
      error: (_s, e) => h.failed(code(e)),
      connectError: (_s, e) => h.failed(code(e)),
    },
  }).catch((e: Error & { code?: string }) => h.failed(code(e)));
  return {
    destroy() {
      gone = true;
      sock?.terminate();
    },
  };
}

function viaNode(path: string, request: Buffer, h: UnixHandlers): UnixConnection {
  let sock: import("node:net").Socket | null = null;
  let gone = false;
  import("node:net").then(
    ({ createConnection }) => {
      if (gone) return;
      const s = createConnection({ path });
      sock = s;
      // write, not end: node:http servers abort a request whose client half-closes.
      s.on("connect", () => s.write(request));
      s.on("data", (c: Buffer) => h.data(c));
      s.on("end", () => h.closed());
      s.on("close", () => h.closed());
      s.on("error", (e: NodeJS.ErrnoException) => h.failed(e.code ?? e.message));
    },
    (e: unknown) => h.failed(String(e)),
  );
  return {
    destroy() {
      gone = true;
      sock?.destroy();
    },
  };
}
