import { Ajv, type ErrorObject } from "ajv";
import { parse as parseYaml } from "yaml";
import { ArqonError, ErrorCode } from "../errors.js";
import type { InspectionPath } from "./types.js";

/** "monitor" never changes traffic and records what enforce would have done; "enforce" blocks and redacts. */
export type CasilMode = "monitor" | "enforce";
/** What happens to a payload that could not be fully inspected (larger than `maxInspectBytes`). */
export type CasilDefaultDecision = "allow" | "block";

/** A custom regex rule. `block` stops matching content (CASIL_POLICY_BLOCKED_PATTERN); `redact` masks the match. */
export interface CasilPatternRule {
  /** Names the rule in block messages and audit records (1-64 characters). */
  name: string;
  /** The regex, in JavaScript syntax, run on the linear-time engine (see docs/casil.md, "Regex safety"). */
  pattern: string;
  /** Any of i, m, s, u. */
  flags?: string;
  /** @default "block" */
  action?: "block" | "redact";
}

/** A Wasm policy (the Overseer). `module` is a file path the server host loads (relative to the policy file). */
export interface CasilWasmRule {
  /** The policy's name (letters, digits, `_`, `.`, `-`; at most 64), as the Wasm host knows it. */
  name: string;
  /**
   * Path of the `.wasm` file the server loads (a relative path resolves against the watched policy file's directory,
   * else the working directory). Required unless an earlier rule of the same name gives it.
   */
  module?: string;
  /** Room globs the policy applies to. @default ["**"] */
  rooms?: string[];
  /** Inbound paths the policy applies to. @default every path */
  paths?: InspectionPath[];
}

/** One policy's settings. Every field is optional; unset fields fall back (tenant → global → defaults). */
export interface CasilPolicySpec {
  /** monitor: never changes traffic, records what enforce would do. @default "monitor" */
  mode?: CasilMode;
  /**
   * The decision when a payload could not be fully inspected (larger than maxInspectBytes). Unset, it follows the
   * mode the policy is evaluated in: "block" in enforce (CASIL_POLICY_DEFAULT_BLOCK), "allow" in monitor.
   * @default "block" in enforce, "allow" in monitor
   */
  defaultDecision?: CasilDefaultDecision;
  /** Room globs (`*` one segment, `**` anything); exclude wins. @default { include: ["**"], exclude: [] } */
  scope?: {
    /** Room globs inspected. @default ["**"] */
    include?: string[];
    /** Room globs never inspected, even when included. @default [] */
    exclude?: string[];
  };
  /** Only this many leading bytes are scanned by regex policies. @default 65536 */
  maxInspectBytes?: number;
  /** Larger payloads are blocked with CASIL_POLICY_OVERSIZE. @default 1048576 */
  maxPayloadBytes?: number;
  /** Block probable secrets (CASIL_POLICY_BLOCKED_SECRET); when false they are redacted instead. @default true */
  blockOnProbableSecret?: boolean;
  /** JSON paths whose values are replaced with "[REDACTED]". @default [] */
  redactionPaths?: string[];
  /** Regexes whose matches in string values are replaced with "[REDACTED]". @default [] */
  redactionPatterns?: string[];
  /** true: redaction changes what is delivered and stored; false: only logs and audit records. @default false */
  transportRedaction?: boolean;
  /** Room globs whose payloads never appear in audit records or logs. @default [] */
  neverLogPayloadFor?: string[];
  /** Custom regex rules (at most 32). @default [] */
  patterns?: CasilPatternRule[];
  /** Schema-typed rooms: room glob → JSON Schema every published message must satisfy. @default {} */
  schemas?: Record<string, Record<string, unknown> | boolean>;
  /** Wasm policies, run after the built-in ones. @default [] */
  wasm?: CasilWasmRule[];
  /** Which inbound paths are inspected. @default every path */
  paths?: InspectionPath[];
  /**
   * Which fields beside the payload are inspected as text by the secret and pattern policies: header names and values,
   * the room name, state keys. @default { headers: true, room: true, stateKeys: true }
   */
  fields?: CasilFieldOptions;
}

/** Per-field switches of `CasilPolicySpec.fields`; an unset switch is on. */
export interface CasilFieldOptions {
  /** @default true */
  headers?: boolean;
  /** @default true */
  room?: boolean;
  /** @default true */
  stateKeys?: boolean;
}

/** A policy document: the global policy at the top level, per-tenant overrides, an optional shadow policy. */
export interface CasilPolicyDocument extends CasilPolicySpec {
  /** @default true (the env kill switch ARQON_CASIL_ENABLED=false wins over the document) */
  enabled?: boolean;
  /** Tenant → settings that replace the global ones field by field. */
  tenants?: Record<string, CasilPolicySpec>;
  /** A policy evaluated beside the live one that never changes traffic; it overrides the live document field by field. */
  shadow?: CasilPolicySpec & {
    /** Tenant → shadow settings, merged over the live tenant's settings field by field. */
    tenants?: Record<string, CasilPolicySpec>;
  };
}

/** Every inbound path, in the order a policy's `paths` default lists them. */
export const INSPECTION_PATHS: readonly InspectionPath[] = ["publish", "server_publish", "presence", "state", "command", "operator"];
/** Most custom `patterns` (and, separately, `redactionPatterns`) one policy may have. */
export const MAX_PATTERNS = 32;
/** Most schema-typed room globs one policy may have. */
export const MAX_SCHEMAS = 256;
/** Most Wasm policies one policy (or tenant layer) may name. */
export const MAX_WASM_POLICIES = 8;

/** What an unset policy field falls back to when neither the document nor the env layer sets it. */
export const CASIL_DEFAULTS = {
  /** Monitor: traffic is never changed until a policy says enforce. */
  mode: "monitor" as CasilMode,
  /** The default decision in monitor mode; in enforce mode an unset `defaultDecision` is "block". */
  defaultDecision: "allow" as CasilDefaultDecision,
  /** Scope includes every room. */
  include: ["**"] as readonly string[],
  /** Scope excludes no room. */
  exclude: [] as readonly string[],
  /** Regex policies scan the first 64 KiB. */
  maxInspectBytes: 65536,
  /** Payloads above 1 MiB are blocked. */
  maxPayloadBytes: 1048576,
  /** Probable secrets are blocked, not masked. */
  blockOnProbableSecret: true,
  /** Redaction applies to logs and audit records only. */
  transportRedaction: false,
};

export const globList = { type: "array", maxItems: 256, items: { type: "string", minLength: 1, maxLength: 256 } };
export const pathList = { type: "array", items: { enum: INSPECTION_PATHS }, uniqueItems: true };
export const specProperties = {
  mode: { enum: ["monitor", "enforce"] },
  defaultDecision: { enum: ["allow", "block"] },
  scope: { type: "object", additionalProperties: false, properties: { include: globList, exclude: globList } },
  maxInspectBytes: { type: "integer", minimum: 1, maximum: 16777216 },
  maxPayloadBytes: { type: "integer", minimum: 1, maximum: 1073741824 },
  blockOnProbableSecret: { type: "boolean" },
  redactionPaths: { type: "array", maxItems: 64, items: { type: "string", minLength: 2, maxLength: 256 } },
  redactionPatterns: { type: "array", maxItems: MAX_PATTERNS, items: { type: "string", minLength: 1 } },
  transportRedaction: { type: "boolean" },
  neverLogPayloadFor: globList,
  patterns: {
    type: "array",
    maxItems: MAX_PATTERNS,
    items: {
      type: "object",
      additionalProperties: false,
      required: ["name", "pattern"],
      properties: {
        name: { type: "string", minLength: 1, maxLength: 64 },
        pattern: { type: "string", minLength: 1 },
        flags: { type: "string" },
        action: { enum: ["block", "redact"] },
      },
    },
  },
  schemas: { type: "object", maxProperties: MAX_SCHEMAS, additionalProperties: { type: ["object", "boolean"] } },
  wasm: {
    type: "array",
    maxItems: MAX_WASM_POLICIES,
    items: {
      type: "object",
      additionalProperties: false,
      required: ["name"],
      properties: {
        name: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$" },
        module: { type: "string", minLength: 1, maxLength: 4096 },
        rooms: globList,
        paths: pathList,
      },
    },
  },
  paths: pathList,
  fields: {
    type: "object",
    additionalProperties: false,
    properties: { headers: { type: "boolean" }, room: { type: "boolean" }, stateKeys: { type: "boolean" } },
  },
};
const specSchema = { type: "object", additionalProperties: false, properties: specProperties };
const tenantsSchema = { type: "object", maxProperties: 10000, additionalProperties: specSchema };
const documentSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...specProperties,
    enabled: { type: "boolean" },
    tenants: tenantsSchema,
    shadow: { type: "object", additionalProperties: false, properties: { ...specProperties, tenants: tenantsSchema } },
  },
};

let documentValidator: ReturnType<Ajv["compile"]> | undefined;

function describeAjvError(e: ErrorObject): string {
  const where = e.instancePath || "(document)";
  if (e.keyword === "additionalProperties") return `${where}: unknown field "${String(e.params.additionalProperty)}"`;
  if (e.keyword === "enum") return `${where}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
  return `${where}: ${e.message ?? "is invalid"}`;
}

/** A CASIL configuration problem: always VALIDATION_ERROR, with the offending location in the message. */
export function casilValidationError(message: string, detail?: Record<string, unknown>): ArqonError {
  return new ArqonError(ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: ${message}`, detail ? { detail } : undefined);
}

/**
 * Checks the document's shape (unknown fields, types, bounds). Semantic checks (regex safety, JSON paths, schemas,
 * Wasm names) happen when an engine compiles it. Throws ArqonError VALIDATION_ERROR.
 */
export function validateCasilDocument(value: unknown): CasilPolicyDocument {
  documentValidator ??= new Ajv({ allErrors: false, strict: false }).compile(documentSchema);
  if (!documentValidator(value)) {
    const err = documentValidator.errors?.[0];
    throw casilValidationError(err ? describeAjvError(err) : "document is invalid", err ? { path: err.instancePath } : undefined);
  }
  return value as CasilPolicyDocument;
}

/** Parses a policy document from JSON or YAML text (YAML is a superset; JSON is tried first) and validates its shape. */
export function parseCasilPolicy(text: string): CasilPolicyDocument {
  if (typeof text !== "string") throw casilValidationError("policy text must be a string");
  if (text.length > 4 * 1024 * 1024) throw casilValidationError("policy text is larger than 4 MiB");
  let value: unknown;
  const trimmed = text.trimStart();
  try {
    value = trimmed.startsWith("{") ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw casilValidationError(`not valid JSON or YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (value === null || value === undefined) value = {};
  return validateCasilDocument(value);
}

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

function envBool(env: Record<string, string | undefined>, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return undefined;
  if (TRUE.has(raw)) return true;
  if (FALSE.has(raw)) return false;
  throw casilValidationError(`${name} must be true or false, not "${env[name]}"`, { variable: name });
}

function envInt(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) < 1) throw casilValidationError(`${name} must be a positive integer, not "${raw}"`, { variable: name });
  return Number(raw);
}

function envEnum<T extends string>(env: Record<string, string | undefined>, name: string, allowed: readonly T[]): T | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === "") return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw casilValidationError(`${name} must be one of ${allowed.join(", ")}, not "${env[name]}"`, { variable: name });
  return raw as T;
}

function envList(env: Record<string, string | undefined>, name: string): string[] | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Splits a pattern list: a JSON array of strings, or comma-separated where commas inside (), [] or {} and escaped
 * commas (`\,`) do not split — so `\d{2,4}` stays one pattern.
 */
export function splitPatternList(raw: string): string[] {
  const text = raw.trim();
  if (text.startsWith("[") && text.endsWith("]")) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (Array.isArray(parsed) && parsed.every((p) => typeof p === "string")) return parsed as string[];
    } catch {
      // Not JSON: a character class like [abc] at both ends; split it as a plain list below.
    }
  }
  const out: string[] = [];
  let depth = 0;
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      current += text[i + 1] === "," ? "," : ch + text[i + 1];
      i++;
      continue;
    }
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if ((ch === ")" || ch === "]" || ch === "}") && depth > 0) depth--;
    if (ch === "," && depth === 0) {
      if (current.trim()) out.push(current.trim());
      current = "";
      continue;
    }
    current += ch;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/**
 * Reads the earlier system's variables into a (partial) policy document: only variables that are set appear.
 * Pure: pass `process.env` on the server. Throws ArqonError VALIDATION_ERROR naming the variable on a bad value.
 *
 * ARQON_CASIL_ENABLED, _MODE, _DEFAULT_DECISION, _SCOPE_INCLUDE, _SCOPE_EXCLUDE (comma-separated globs),
 * _MAX_INSPECT_BYTES, _MAX_PAYLOAD_BYTES, _BLOCK_ON_PROBABLE_SECRET, _REDACTION_PATHS (comma-separated),
 * _REDACTION_PATTERNS (JSON array or comma-separated), _TRANSPORT_REDACTION, _NEVER_LOG_PAYLOAD_FOR (globs).
 */
export function casilConfigFromEnv(env: Record<string, string | undefined>): CasilPolicyDocument {
  const p = "ARQON_CASIL_";
  const doc: CasilPolicyDocument = {};
  const enabled = envBool(env, `${p}ENABLED`);
  if (enabled !== undefined) doc.enabled = enabled;
  const mode = envEnum(env, `${p}MODE`, ["monitor", "enforce"] as const);
  if (mode) doc.mode = mode;
  const def = envEnum(env, `${p}DEFAULT_DECISION`, ["allow", "block"] as const);
  if (def) doc.defaultDecision = def;
  const include = envList(env, `${p}SCOPE_INCLUDE`);
  const exclude = envList(env, `${p}SCOPE_EXCLUDE`);
  if (include || exclude) doc.scope = { ...(include ? { include } : {}), ...(exclude ? { exclude } : {}) };
  const maxInspect = envInt(env, `${p}MAX_INSPECT_BYTES`);
  if (maxInspect !== undefined) doc.maxInspectBytes = maxInspect;
  const maxPayload = envInt(env, `${p}MAX_PAYLOAD_BYTES`);
  if (maxPayload !== undefined) doc.maxPayloadBytes = maxPayload;
  const secrets = envBool(env, `${p}BLOCK_ON_PROBABLE_SECRET`);
  if (secrets !== undefined) doc.blockOnProbableSecret = secrets;
  const paths = envList(env, `${p}REDACTION_PATHS`);
  if (paths) doc.redactionPaths = paths;
  const patterns = env[`${p}REDACTION_PATTERNS`];
  if (patterns !== undefined && patterns.trim() !== "") doc.redactionPatterns = splitPatternList(patterns);
  const transport = envBool(env, `${p}TRANSPORT_REDACTION`);
  if (transport !== undefined) doc.transportRedaction = transport;
  const neverLog = envList(env, `${p}NEVER_LOG_PAYLOAD_FOR`);
  if (neverLog) doc.neverLogPayloadFor = neverLog;
  return validateCasilDocument(doc);
}

/** Field-by-field override: fields set in `over` replace those in `base` (`scope` and `fields` merge key by key). */
export function mergeSpec<T extends CasilPolicySpec>(base: T, over: CasilPolicySpec | undefined): T {
  if (!over) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    if (key === "scope") out[key] = { ...base.scope, ...(value as CasilPolicySpec["scope"]) };
    else if (key === "fields") out[key] = { ...base.fields, ...(value as CasilFieldOptions) };
    else out[key] = value;
  }
  return out as T;
}

/**
 * Combines the env layer and a document: the document wins field by field, except `enabled: false` from the env,
 * which is a kill switch. Tenants and shadow come from the document.
 */
export function combineCasilConfig(envDoc: CasilPolicyDocument, doc: CasilPolicyDocument): CasilPolicyDocument {
  const merged = mergeSpec<CasilPolicyDocument>(envDoc, doc);
  if (envDoc.enabled === false) merged.enabled = false;
  return merged;
}
