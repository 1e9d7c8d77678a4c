import path from "node:path";
import type { CliIo } from "../index.js";
import { CliError, list } from "../config.js";
import { DEV_OPERATOR_KEY_FILE, readDevOperatorKey } from "../keys.js";
import { httpBase } from "./client-args.js";

/** Flags of the commands that call the server API: where the server is and which credential to send. */
export const OPERATOR_FLAGS = {
  url: { type: "string" },
  "operator-key": { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

export interface OperatorFlags {
  url?: string;
  "operator-key"?: string;
  token?: string;
}

/** What the help texts say about the shared flags. */
export const OPERATOR_FLAGS_HELP = `  --url URL            the server: http(s)://host:port or ws(s)://host:port/ws (ARQON_URL; default http://127.0.0.1:9100)
  --operator-key KEY   an operator key (prefer ARQON_OPERATOR_KEY: flags show up in the process list); without one,
                       the dev key in <ARQON_DATA_DIR or ./.arqon>/operator-key that \`arqon serve --dev\` writes
  --token JWT          a token with role "admin", for what a tenant admin may do in its own tenant (ARQON_TOKEN)
  --json               print the server's JSON answer`;

export const DEFAULT_API_URL = "http://127.0.0.1:9100";
/** How long one request of the server API may take. */
export const API_TIMEOUT_MS = 5000;

export interface OperatorContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** The server's HTTP base (`http://host:port`) from `--url` or ARQON_URL, given as http(s) or as the ws(s) URL. */
export function apiBase(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const raw = flag ?? env.ARQON_URL ?? DEFAULT_API_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`--url: "${raw}" is not a URL (http://host:port or ws://host:port/ws)`);
  }
  if (!["http:", "https:", "ws:", "wss:"].includes(url.protocol)) throw new CliError(`--url: "${url.protocol}" is not http, https, ws or wss`);
  return httpBase(url.href);
}

/**
 * The credential sent to the server API. `source` says where it came from (a flag, a variable or the dev key file)
 * for messages; the value itself is never printed.
 */
export type Credential = { kind: "operator-key" | "token"; value: string; source: string };

/** Which principals a verb admits: the operator only, or also an admin of the tenant it names. */
export type ApiScope = "operator" | "tenant-admin";

/** The dev operator key file under `<ARQON_DATA_DIR or ./.arqon>`. */
export function devOperatorKeyFile(ctx: OperatorContext): string {
  return path.join(path.resolve(ctx.cwd, ctx.env.ARQON_DATA_DIR || ".arqon"), DEV_OPERATOR_KEY_FILE);
}

/**
 * The credential of a request, first found: `--operator-key`, `--token`, ARQON_OPERATOR_KEY (the first of a
 * comma-separated list), ARQON_TOKEN when the verb admits tenant admins, the dev operator key file, then ARQON_TOKEN
 * for the other verbs too (so the server can say why it is not enough). Undefined when there is none: the request is
 * still sent, and the server's 401 comes with a hint.
 */
export function resolveCredential(flags: OperatorFlags, ctx: OperatorContext, scope: ApiScope): Credential | undefined {
  const flagKey = flags["operator-key"];
  const flagToken = flags.token;
  if (flagKey !== undefined && flagToken !== undefined) throw new CliError("give --operator-key or --token, not both");
  if (flagKey !== undefined) {
    if (flagKey.trim() === "") throw new CliError("--operator-key is empty");
    return { kind: "operator-key", value: flagKey.trim(), source: "--operator-key" };
  }
  if (flagToken !== undefined) {
    if (flagToken.trim() === "") throw new CliError("--token is empty");
    return { kind: "token", value: flagToken.trim(), source: "--token" };
  }
  const envKey = list(ctx.env.ARQON_OPERATOR_KEY)?.[0];
  if (envKey !== undefined) return { kind: "operator-key", value: envKey, source: "ARQON_OPERATOR_KEY" };
  const envToken = ctx.env.ARQON_TOKEN?.trim() || undefined;
  const envTokenCredential: Credential | undefined = envToken === undefined ? undefined : { kind: "token", value: envToken, source: "ARQON_TOKEN" };
  if (scope === "tenant-admin" && envTokenCredential) return envTokenCredential;
  const file = devOperatorKeyFile(ctx);
  let devKey: string | undefined;
  try {
    devKey = readDevOperatorKey(path.dirname(file));
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (devKey !== undefined) return { kind: "operator-key", value: devKey, source: file };
  return envTokenCredential;
}

/** The server API refused a request: its error code (or `HTTP_<status>` when the body has none) and message. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The server did not answer (refused connection, DNS failure, timeout). */
export class UnreachableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnreachableError";
  }
}

/** Calls the server API with one credential; JSON in and out, at most API_TIMEOUT_MS per request. */
export class OperatorClient {
  constructor(
    readonly base: string,
    readonly credential: Credential | undefined,
    private readonly timeoutMs = API_TIMEOUT_MS,
  ) {}

  /** A client for the command's flags: `--url`/ARQON_URL and the credential resolveCredential finds for `scope`. */
  static fromFlags(flags: OperatorFlags, ctx: OperatorContext, scope: ApiScope): OperatorClient {
    return new OperatorClient(apiBase(flags.url, ctx.env), resolveCredential(flags, ctx, scope));
  }

  /**
   * Sends one request and resolves with the parsed JSON answer. Rejects with ApiError for an answer outside 2xx and
   * with UnreachableError when there is no answer in time. Redirects are not followed, so the key never goes to
   * another host.
   */
  async request<T>(method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE", pathAndQuery: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.credential?.kind === "operator-key") headers["x-api-key"] = this.credential.value;
    else if (this.credential?.kind === "token") headers.authorization = `Bearer ${this.credential.value}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let status: number;
    let text: string;
    try {
      const res = await fetch(`${this.base}${pathAndQuery}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const e = err as Error & { cause?: { message?: string; code?: string } };
      if (e.name === "TimeoutError") throw new UnreachableError(`no answer from ${this.base} within ${this.timeoutMs / 1000} s`, { cause: err });
      throw new UnreachableError(`cannot reach ${this.base}: ${e.cause?.message || e.cause?.code || e.message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status > 299) {
      const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof error?.code === "string" ? error.code : `HTTP_${status}`;
      const message = typeof error?.message === "string" ? error.message : `${this.base} answered HTTP ${status}`;
      throw new ApiError(code, message, status);
    }
    if (parsed === undefined) throw new ApiError(`HTTP_${status}`, `${this.base} answered HTTP ${status} without a JSON body`, status);
    return parsed as T;
  }

  /**
   * Prints a failed request as `arqon <command>: <CODE>: <message>` (with a hint after a 401) and resolves to exit
   * code 1. Anything else (a usage error, a bug) is rethrown.
   */
  report(io: CliIo, command: string, err: unknown, ctx: OperatorContext): number {
    if (err instanceof UnreachableError) {
      io.err(`arqon ${command}: ${err.message}`);
      return 1;
    }
    if (!(err instanceof ApiError)) throw err;
    io.err(`arqon ${command}: ${err.code}: ${err.message}`);
    if (err.status === 401) {
      io.err(
        this.credential === undefined
          ? `hint: no credential was sent: set ARQON_OPERATOR_KEY to an operator key of the server (dev mode of \`arqon serve\` writes one to ${devOperatorKeyFile(ctx)})`
          : this.credential.kind === "operator-key"
            ? `hint: the server refused the operator key from ${this.credential.source}: set ARQON_OPERATOR_KEY to one of its operator keys`
            : `hint: the server refused the token from ${this.credential.source}: use an operator key (ARQON_OPERATOR_KEY) or a valid token with role "admin"`,
      );
    }
    return 1;
  }
}

/** Rows as columns padded to their widest cell (the last column is not padded). */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** An epoch-ms time as ISO 8601 (seconds precision). */
export function isoTime(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A path segment of the API (a tenant name, a rule id). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}
