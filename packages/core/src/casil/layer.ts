import { Ajv, type ErrorObject } from "ajv";
import { parse as parseYaml } from "yaml";
import { fromBase64, utf8Length } from "../codec/bytes.js";
import { ArqonError, ErrorCode } from "../errors.js";
import { MAX_WASM_POLICIES, casilValidationError, globList, mergeSpec, pathList, specProperties, type CasilPolicySpec } from "./config.js";
import { createCasilEngine, type CasilWasmHost } from "./engine.js";
import type { InspectionPath } from "./types.js";

/**
 * A Wasm policy in a tenant layer. The module travels as bytes (standard base64 in `wasm`), never as a host path:
 * host paths are operator-only.
 */
export interface CasilLayerWasmRule {
  /** The policy's name (letters, digits, `_`, `.`, `-`; at most 64); rules of one name must carry the same module. */
  name: string;
  /** The module bytes, standard base64. */
  wasm: string;
  /** Room globs the policy applies to. @default ["**"] */
  rooms?: string[];
  /** Inbound paths the policy applies to. @default every path */
  paths?: InspectionPath[];
}

/**
 * A tenant's CASIL layer: the per-policy fields of a policy document, evaluated on top of the operator's baseline for
 * that tenant's traffic only. It can add rules and turn its tenant's mode to enforce; it cannot turn inspection off,
 * name other tenants, run a shadow policy or name host files.
 */
export interface CasilLayerDocument extends Omit<CasilPolicySpec, "wasm"> {
  /** Wasm policies carrying their module bytes (at most MAX_WASM_POLICIES), run after the built-in ones. @default [] */
  wasm?: CasilLayerWasmRule[];
}

/** Per-tenant bounds `validateCasilLayer` and `parseCasilLayer` enforce beyond the fixed ones. */
export interface CasilLayerLimits {
  /** Largest decoded Wasm module a layer may carry. @default 262144 (256 KiB) */
  maxWasmModuleBytes?: number;
}

/** Largest layer, serialized as JSON (it must fit a NATS KV value with its envelope). */
export const MAX_LAYER_BYTES = 768 * 1024;
/** Default cap on each decoded Wasm module of a layer. */
export const DEFAULT_LAYER_WASM_MODULE_BYTES = 256 * 1024;

const INSPECTION_OFF = "a tenant layer cannot turn inspection off";
const HOST_PATH = "host paths are operator-only; upload the module bytes as base64 in wasm[].wasm";

const layerSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...specProperties,
    wasm: {
      type: "array",
      maxItems: MAX_WASM_POLICIES,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name", "wasm"],
        properties: {
          name: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,64}$" },
          wasm: { type: "string", minLength: 1, maxLength: MAX_LAYER_BYTES },
          rooms: globList,
          paths: pathList,
        },
      },
    },
  },
};

let layerValidator: ReturnType<Ajv["compile"]> | undefined;

/** "/patterns/0/name" → "layer.patterns[0].name". */
function locationOf(where: string, pointer: string): string {
  let out = where;
  for (const part of pointer.split("/").slice(1)) out += /^\d+$/.test(part) ? `[${part}]` : `.${part.replace(/~1/g, "/").replace(/~0/g, "~")}`;
  return out;
}

function describeLayerError(where: string, e: ErrorObject): string {
  const at = locationOf(where, e.instancePath);
  if (e.keyword === "additionalProperties") return `${at}: unknown field "${String(e.params.additionalProperty)}"`;
  if (e.keyword === "enum") return `${at}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
  return `${at}: ${e.message ?? "is invalid"}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function refuse(message: string, path: string): ArqonError {
  return new ArqonError(ErrorCode.AUTHORIZATION_ERROR, message, { detail: { path } });
}

/** The checks that make a layer unable to weaken the baseline, on one section (the top level or the caller's own). */
function checkPrivileges(section: Record<string, unknown>, where: string): void {
  if ("enabled" in section && section.enabled !== true) throw refuse(INSPECTION_OFF, `${where}.enabled`);
  if ("shadow" in section) throw casilValidationError(`${where}.shadow: a shadow policy is not supported in tenant layers`, { path: `${where}.shadow` });
  const wasm = section.wasm;
  if (Array.isArray(wasm)) {
    for (const [i, rule] of wasm.entries()) {
      if (isObject(rule) && "module" in rule) throw refuse(HOST_PATH, `${where}.wasm[${i}].module`);
    }
  }
}

function checkShape(section: Record<string, unknown>, where: string): CasilLayerDocument {
  layerValidator ??= new Ajv({ allErrors: false, strict: false }).compile(layerSchema);
  if (!layerValidator(section)) {
    const err = layerValidator.errors?.[0];
    throw casilValidationError(err ? describeLayerError(where, err) : `${where}: layer is invalid`, { path: err ? locationOf(where, err.instancePath) : where });
  }
  return section as CasilLayerDocument;
}

const acceptAnyWasm: CasilWasmHost = {
  has: () => true,
  evaluate: () => Promise.resolve({ verdict: "error", error: "unavailable" }),
};

/**
 * Validates a tenant's layer completely, except for the Wasm modules' ABI (the server's host checks that when it
 * loads them), and returns it normalized: a deep copy, `enabled: true` dropped (inspection is always on), the
 * caller's own `tenants.<tenant>` section merged over the top-level fields (field by field, as in a policy document)
 * and removed.
 *
 * Refusals: AUTHORIZATION_ERROR for `enabled` other than true ("a tenant layer cannot turn inspection off"), for a
 * `tenants` section naming any tenant other than `tenant`, and for a Wasm rule with `module` (a host path; decided from
 * the document alone, so no answer depends on the file system). VALIDATION_ERROR naming the location for `shadow`,
 * unknown fields, bad types, unsafe regexes, bad JSON paths, bad schemas, bad base64, a decoded module larger than
 * `maxWasmModuleBytes`, two rules naming one policy with different bytes, and a layer larger than MAX_LAYER_BYTES
 * serialized as JSON.
 */
export function validateCasilLayer(value: unknown, tenant: string, limits: CasilLayerLimits = {}): CasilLayerDocument {
  if (typeof tenant !== "string" || tenant === "") throw casilValidationError("a layer needs the tenant it belongs to");
  if (!isObject(value)) throw casilValidationError("layer: a tenant layer must be an object");
  let serialized: string;
  try {
    serialized = JSON.stringify(value);
  } catch (err) {
    throw casilValidationError(`layer: not serializable as JSON: ${(err as Error).message}`);
  }
  if (utf8Length(serialized) > MAX_LAYER_BYTES) throw casilValidationError(`layer: larger than ${MAX_LAYER_BYTES} bytes serialized as JSON`, { limit: MAX_LAYER_BYTES });
  const copy = JSON.parse(serialized) as Record<string, unknown>;
  checkPrivileges(copy, "layer");
  const { enabled: _enabled, tenants, ...top } = copy;
  let own: Record<string, unknown> | undefined;
  if (tenants !== undefined) {
    if (!isObject(tenants)) throw casilValidationError("layer.tenants: must be an object", { path: "layer.tenants" });
    const others = Object.keys(tenants).filter((t) => t !== tenant);
    if (others.length > 0) throw refuse(`a tenant layer may only configure its own tenant ("${tenant}")`, "layer.tenants");
    const section = tenants[tenant];
    if (section !== undefined) {
      const where = `layer.tenants.${tenant}`;
      if (!isObject(section)) throw casilValidationError(`${where}: must be an object`, { path: where });
      checkPrivileges(section, where);
      const { enabled: _e, ...rest } = section;
      own = rest;
    }
  }
  let doc = checkShape(top, "layer");
  if (own) doc = mergeSpec(doc as CasilPolicySpec, checkShape(own, `layer.tenants.${tenant}`) as CasilPolicySpec) as CasilLayerDocument;
  const maxModule = limits.maxWasmModuleBytes ?? DEFAULT_LAYER_WASM_MODULE_BYTES;
  const seen = new Map<string, string>();
  for (const [i, rule] of (doc.wasm ?? []).entries()) {
    const where = `layer.wasm[${i}].wasm`;
    const bytes = fromBase64(rule.wasm);
    if (!bytes) throw casilValidationError(`${where}: not valid base64`, { path: where });
    if (bytes.length > maxModule) throw casilValidationError(`${where}: module of ${bytes.length} bytes exceeds the cap of ${maxModule} bytes`, { path: where, limit: maxModule });
    const earlier = seen.get(rule.name);
    if (earlier !== undefined && earlier !== rule.wasm) throw casilValidationError(`layer.wasm[${i}]: Wasm policy "${rule.name}" names two different modules`, { path: `layer.wasm[${i}]` });
    seen.set(rule.name, rule.wasm);
  }
  // Regex safety, JSON paths and schemas: compiling is the check (the engine is thrown away).
  createCasilEngine({ policy: casilLayerSpec(doc), layer: true, wasm: acceptAnyWasm });
  return doc;
}

/** Parses a layer from JSON or YAML text (JSON is tried first) and validates it as validateCasilLayer does. */
export function parseCasilLayer(text: string, tenant: string, limits: CasilLayerLimits = {}): CasilLayerDocument {
  if (typeof text !== "string") throw casilValidationError("layer text must be a string");
  if (text.length > MAX_LAYER_BYTES || utf8Length(text) > MAX_LAYER_BYTES) throw casilValidationError(`layer: text is larger than ${MAX_LAYER_BYTES} bytes`, { limit: MAX_LAYER_BYTES });
  let value: unknown;
  try {
    value = text.trimStart().startsWith("{") ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw casilValidationError(`layer: not valid JSON or YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (value === null || value === undefined) value = {};
  return validateCasilLayer(value, tenant, limits);
}

/** The layer as an engine policy (`createCasilEngine({ policy, layer: true })`): Wasm rules keep their name, rooms and paths. */
export function casilLayerSpec(layer: CasilLayerDocument): CasilPolicySpec {
  const { wasm, ...rest } = layer;
  if (!wasm) return rest;
  return { ...rest, wasm: wasm.map(({ wasm: _bytes, ...rule }) => rule) };
}

/** The distinct Wasm modules of a validated layer, decoded, in rule order. */
export function casilLayerModules(layer: CasilLayerDocument): Array<{
  /** The Wasm policy's name. */
  name: string;
  /** The decoded module. */
  bytes: Uint8Array;
}> {
  const out: Array<{ name: string; bytes: Uint8Array }> = [];
  const seen = new Set<string>();
  for (const rule of layer.wasm ?? []) {
    if (seen.has(rule.name)) continue;
    seen.add(rule.name);
    const bytes = fromBase64(rule.wasm);
    if (!bytes) throw casilValidationError(`layer: Wasm policy "${rule.name}" is not valid base64`);
    out.push({ name: rule.name, bytes });
  }
  return out;
}
