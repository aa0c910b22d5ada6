// Structured JSON logs, one object per line, on stderr (or any writable).
// Keys that look like credentials are redacted wherever they appear.

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEY = /secret|token|password|signature|credential/i;

export function isLevel(v: string): v is Level {
  return v in ORDER;
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) ? "[redacted]" : redact(v, depth + 1);
  }
  return out;
}

export interface LoggerOptions {
  level?: Level;
  write?: (line: string) => void;
  base?: Fields;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const envLevel = process.env.ENIWAY_LOG_LEVEL ?? "";
  const level: Level = opts.level ?? (isLevel(envLevel) ? envLevel : "info");
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const base = opts.base ?? {};
  const emit = (lvl: Level, msg: string, fields?: Fields): void => {
    if (ORDER[lvl] < ORDER[level]) return;
    const rec = {
      time: new Date().toISOString(),
      level: lvl,
      msg,
      ...(redact({ ...base, ...fields }) as Fields),
    };
    write(`${JSON.stringify(rec)}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger({ level, write, base: { ...base, ...fields } }),
  };
}

export const silentLogger: Logger = createLogger({ write: () => {} });
