/**
 * Structured logs: one JSON line per event on stdout/stderr. Lines carry identifiers, routes,
 * statuses and timings — never SDP, tokens, keys or request bodies.
 */
export type Level = "info" | "warn" | "error";
const ORDER: Record<Level | "off", number> = { info: 20, warn: 30, error: 40, off: 100 };

export function createLogger(threshold: Level | "off") {
  const write = (level: Level, fields: Record<string, unknown>) => {
    if (ORDER[level] < ORDER[threshold]) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, ...fields });
    (level === "error" || level === "warn" ? process.stderr : process.stdout).write(`${line}\n`);
  };
  return {
    info: (fields: Record<string, unknown>) => write("info", fields),
    warn: (fields: Record<string, unknown>) => write("warn", fields),
    error: (fields: Record<string, unknown>) => write("error", fields),
  };
}

export type Logger = ReturnType<typeof createLogger>;
