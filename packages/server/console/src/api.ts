/** The console's HTTP side: the server API and the monitoring routes, called with the signed-in credential. */

/** An error answer of the server (`{"error":{"code","message"}}`), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Who is signed in: the operator (an operator key) or a tenant admin (a token with role "admin"). */
export interface Session {
  credential: string;
  kind: "operator" | "admin";
  /** The admin's tenant; for the operator, the tenant the pages look at (chosen in the header). */
  tenant: string;
  /** The admin token's `sub`. */
  sub?: string;
}

const STORE_KEY = "arqon-console-session";

/** The session kept for this browser tab (sessionStorage: gone when the tab closes). */
export function loadSession(): Session | undefined {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    return raw ? (JSON.parse(raw) as Session) : undefined;
  } catch {
    return undefined;
  }
}

export function saveSession(session: Session | undefined): void {
  if (session) sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORE_KEY);
}

async function request(credential: string, method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${credential}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  try {
    return await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch (err) {
    throw new ApiError(0, "NETWORK", `the server did not answer (${String(err)})`);
  }
}

async function failure(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText;
  try {
    const json = (await res.json()) as { error?: { code?: string; message?: string } };
    if (json.error?.code) code = json.error.code;
    if (json.error?.message) message = json.error.message;
  } catch {
    // not JSON: the status says it
  }
  return new ApiError(res.status, code, message);
}

/** Calls a JSON route; rejects with ApiError on an error answer. */
export async function api<T = Record<string, unknown>>(credential: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(credential, method, path, body);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

/** GET /metrics as text (operator only). */
export async function metricsText(credential: string): Promise<string> {
  const res = await request(credential, "GET", "/metrics");
  if (!res.ok) throw await failure(res);
  return res.text();
}

/** `/api/v1/tenants/<t>` plus the rest, each segment encoded (a `/` in a room becomes `%2F`). */
export function tenantPath(tenant: string, ...rest: string[]): string {
  return ["/api/v1/tenants", encodeURIComponent(tenant), ...rest.map((s) => encodeURIComponent(s))].join("/");
}

/** The payload of a JWT, unverified (only to prefill the sign-in form's tenant), or undefined. */
export function jwtClaims(token: string): Record<string, unknown> | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const text = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const claims = JSON.parse(text) as unknown;
    return typeof claims === "object" && claims !== null ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Signs in. A credential that reads as a JWT is a token: its tenant (`tenant`, or the token's `tenant` claim) must
 * answer GET /api/v1/tenants/:t, which only its admins (and the operator) may read. Anything else is an operator key,
 * which must answer GET /api/v1/info.
 */
export async function signIn(credential: string, tenantHint: string): Promise<Session> {
  const trimmed = credential.trim();
  if (trimmed === "") throw new ApiError(400, "AUTH_MISSING", "paste an operator key or a tenant admin token");
  const claims = trimmed.split(".").length === 3 ? jwtClaims(trimmed) : undefined;
  if (!claims) {
    await api(trimmed, "GET", "/api/v1/info");
    return { credential: trimmed, kind: "operator", tenant: tenantHint.trim() };
  }
  const tenant = tenantHint.trim() || (typeof claims.tenant === "string" ? claims.tenant : "");
  if (!tenant) throw new ApiError(400, "TENANT_MISSING", "this token names no tenant claim; enter its tenant");
  await api(trimmed, "GET", tenantPath(tenant));
  return { credential: trimmed, kind: "admin", tenant, ...(typeof claims.sub === "string" ? { sub: claims.sub } : {}) };
}

/** One sample of a Prometheus text exposition: name, labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the lines /metrics answers), skipping comments. */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) for (const l of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, "$1");
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

/** The sum of a family's samples whose labels include `match`. */
export function sum(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
