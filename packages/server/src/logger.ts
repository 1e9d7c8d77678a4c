import { pino, type Logger } from "pino";
import PinoPretty from "pino-pretty";

/** Options of `createLogger`. */
export interface LoggerOptions {
  /** @default "info" */
  level?: string;
  /** Human-readable lines instead of JSON. @default process.stdout.isTTY */
  pretty?: boolean;
}

/** The gateway's structured logger: JSON lines for machines, pretty lines on a terminal. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (!pretty) return pino({ name: "arqon", level });
  return pino({ name: "arqon", level }, PinoPretty({ colorize: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname,name" }));
}
