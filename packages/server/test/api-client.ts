import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterEach } from "vitest";
import { startGateway, type StartGatewayOptions, type TestGateway } from "../src/testing.js";
import { API_OPERATIONS, FIXED_ROUTES, GENERIC_MARK, openApiDocument } from "../src/openapi.js";

// Response bodies are read field by field in the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** A server-API answer: the HTTP status and the parsed JSON body (undefined when empty). */
export interface ApiAnswer {
  status: number;
  json: Json;
}

type Operation = {
  operationId: string;
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content: Record<string, { schema: unknown }> }>;
  [GENERIC_MARK]?: boolean;
};

/**
 * The document every answer is checked against: every route of the router with an entry in API_OPERATIONS (the
 * table keys are the routes' own paths), so it does not depend on how a test's gateway is configured.
 */
const DOC = openApiDocument(
  Object.keys(API_OPERATIONS)
    .filter((key) => !FIXED_ROUTES.some((r) => `${r.method} ${r.path}` === key))
    .map((key) => {
      const [method, path] = key.split(" ") as [Json, string];
      return { method, path, access: "operator", summary: key };
    }),
) as { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

const COMPONENTS_ID = "arqon-openapi-components";
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
addFormats(ajv);
ajv.addSchema({ $id: COMPONENTS_ID, $defs: rewriteRefs(DOC.components.schemas) });

/** OpenAPI's `#/components/schemas/X` pointers, as pointers into the one schema holding the components. */
function rewriteRefs(value: unknown): Json {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k === "$ref" && typeof v === "string" ? v.replace("#/components/schemas/", `${COMPONENTS_ID}#/$defs/`) : rewriteRefs(v);
  }
  return out;
}

const compiled = new Map<string, ValidateFunction>();
function validator(where: string, schema: unknown): ValidateFunction {
  let v = compiled.get(where);
  if (!v) {
    v = ajv.compile(rewriteRefs(schema));
    compiled.set(where, v);
  }
  return v;
}

const templates = Object.keys(DOC.paths).map((template) => ({
  template,
  parts: template.split("/"),
  literals: template.split("/").filter((p) => !p.startsWith("{")).length,
}));

/** The documented path template a concrete path (without its query) matches, preferring literal segments. */
function templateOf(method: string, pathname: string): string | undefined {
  const parts = pathname.split("/");
  const matching = templates
    .filter((t) => t.parts.length === parts.length && t.parts.every((p, i) => p.startsWith("{") || p === parts[i]))
    .sort((a, b) => b.literals - a.literals);
  return (matching.find((t) => DOC.paths[t.template]![method.toLowerCase()] !== undefined) ?? matching[0])?.template;
}

/** The statuses answered per operationId in this test file, each checked against the document. */
export const answered = new Map<string, Set<number>>();

/**
 * Checks one real answer against the OpenAPI document (src/openapi.ts) and throws a readable error when it does not
 * match: no operation, or a generic one without a schema, for the method and path; a status the operation does not
 * list; a body its schema refuses; or a 2xx to a request whose body or query parameters the document refuses.
 * An answer to a method or path no operation has must be the router's 404 or 405 error.
 */
export function checkAnswer(method: string, target: string, status: number, body: unknown, contentType: string | null, sent?: unknown): void {
  const url = new URL(target, "http://x");
  const template = templateOf(method, url.pathname);
  const op = template ? DOC.paths[template]![method.toLowerCase()] : undefined;
  const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 400) ?? String(v);
  if (!op) {
    if ((status === 404 || status === 405) && validator("Error", { $ref: "#/components/schemas/Error" })(body)) return;
    throw new Error(`openapi: no operation documents ${method} ${url.pathname} (answered ${status} ${show(body)})`);
  }
  const name = `${method} ${template} (${op.operationId})`;
  answered.set(op.operationId, (answered.get(op.operationId) ?? new Set()).add(status));
  if (op[GENERIC_MARK]) throw new Error(`openapi: ${name} has no schema entry in API_OPERATIONS (src/openapi.ts)`);
  const response = op.responses[String(status)];
  if (!response) throw new Error(`openapi: ${name} answered ${status}, which the document does not list (${Object.keys(op.responses).join(", ")}): ${show(body)}`);
  const [type, media] = Object.entries(response.content)[0]!;
  if (contentType !== null && !contentType.startsWith(type)) throw new Error(`openapi: ${name} ${status} came as ${contentType}, documented as ${type}`);
  const validate = validator(`${name} ${status}`, media.schema);
  if (!validate(body)) throw new Error(`openapi: ${name} ${status} does not match its schema: ${ajv.errorsText(validate.errors)}\n  body: ${show(body)}`);
  if (status < 200 || status > 299) return;
  const declared = new Set((op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name));
  for (const q of url.searchParams.keys()) {
    if (!declared.has(q)) throw new Error(`openapi: ${name} took query parameter "${q}", which the document does not list`);
  }
  const request = op.requestBody?.content["application/json"];
  if (request && sent !== undefined && typeof sent !== "string") {
    const check = validator(`${name} request`, request.schema);
    if (!check(sent)) throw new Error(`openapi: ${name} accepted a body its request schema refuses: ${ajv.errorsText(check.errors)}\n  body: ${show(sent)}`);
  }
}

/**
 * Calls a gateway's HTTP API over real HTTP and checks the answer against the OpenAPI document (`checkAnswer`).
 * `auth` is the bearer credential (none for null); a string body is sent as it is (malformed JSON tests), anything
 * else as JSON.
 */
export async function callApi(baseUrl: string, method: string, path: string, body: unknown, auth: string | null): Promise<ApiAnswer> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth !== null) headers.authorization = `Bearer ${auth}`;
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  checkAnswer(method, path, res.status, json, res.headers.get("content-type"), body);
  return { status: res.status, json };
}

/**
 * `fetch` for tests that read the raw answer (headers, text): checks the answer against the OpenAPI document like
 * `callApi` and hands back an equivalent Response whose body can still be read.
 */
export async function checkedFetch(url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, init);
  const text = await res.text();
  const type = res.headers.get("content-type");
  const body = type?.startsWith("application/json") && text ? JSON.parse(text) : text;
  let sent: unknown = init.body;
  if (typeof sent === "string") {
    try {
      sent = JSON.parse(sent);
    } catch {
      // Deliberately malformed JSON: sent as it is, not checked.
    }
  }
  const target = new URL(url);
  checkAnswer(init.method ?? "GET", target.pathname + target.search, res.status, body, type, sent);
  return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/** The status and error code of an answer, for one-line assertions. */
export function codeOf(r: ApiAnswer): [number, string | undefined] {
  return [r.status, r.json?.error?.code];
}

/**
 * A test file's server-API gateway: `start` opens one (port 0, the operator key `key`), `api` calls it over real HTTP
 * with `auth` as the bearer credential (the operator key unless given, none for null); it is closed after each test.
 */
export function apiGateway(key: string): {
  start(options?: StartGatewayOptions): Promise<TestGateway>;
  api(method: string, path: string, body?: unknown, auth?: string | null): Promise<ApiAnswer>;
} {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  return {
    async start(options = {}) {
      gw = await startGateway({ operatorKeys: [key], ...options });
      return gw;
    },
    api(method, path, body, auth = key) {
      if (!gw) throw new Error("apiGateway: start() a gateway first");
      return callApi(gw.httpUrl, method, path, body, auth);
    },
  };
}
