// Response bodies are read field by field in the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** A server-API answer: the HTTP status and the parsed JSON body (undefined when empty). */
export interface ApiAnswer {
  status: number;
  json: Json;
}

/**
 * Calls a gateway's HTTP API over real HTTP. `auth` is the bearer credential (none for null); a string body is sent as
 * it is (malformed JSON tests), anything else as JSON.
 */
export async function callApi(baseUrl: string, method: string, path: string, body: unknown, auth: string | null): Promise<ApiAnswer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth !== null) headers.authorization = `Bearer ${auth}`;
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** The status and error code of an answer, for one-line assertions. */
export function codeOf(r: ApiAnswer): [number, string | undefined] {
  return [r.status, r.json?.error?.code];
}
