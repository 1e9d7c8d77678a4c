import { Ajv, type ValidateFunction } from "ajv";
import { utf8Decode, utf8Encode } from "../codec/bytes.js";
import { ErrorCode } from "../errors.js";
import { roomMatches } from "../room/names.js";
import {
  CASIL_DEFAULTS,
  INSPECTION_PATHS,
  casilConfigFromEnv,
  casilValidationError,
  combineCasilConfig,
  mergeSpec,
  parseCasilPolicy,
  validateCasilDocument,
  type CasilDefaultDecision,
  type CasilFieldOptions,
  type CasilMode,
  type CasilPolicyDocument,
  type CasilPolicySpec,
} from "./config.js";
import { REDACTED, mapStrings, parseJsonPath, redactPath, type PathSegment } from "./json-path.js";
import { compilePolicyRegex, linearRegExpEngine, type PolicyRegex } from "./regex-safety.js";
import { schemaProblem } from "./schema-safety.js";
import { SECRET_FIELD_RE, findSecrets, isSecretFieldName, maskSecretsInText, type SecretHit, type SecretKind } from "./secrets.js";
import { CasilTelemetry, type CasilAction, type CasilStatsSnapshot } from "./telemetry.js";
import type { Decision, InspectionInput, InspectionPath, Inspector } from "./types.js";

/** What a Wasm policy call came to. `error` covers traps, timeouts and an unavailable module: CASIL fails closed. */
export interface CasilWasmResult {
  /** allow: the module let the payload through; deny: it refused it (CASIL_WASM_DENY); error: the call failed. */
  verdict: "allow" | "deny" | "error";
  /** The module's reason for a deny, or what went wrong for an error. */
  reason?: string;
  /** For errors: "trap", "timeout", "unavailable", "rate_limited", "disabled" (circuit breaker open), ... */
  error?: string;
  /** How long the call took, in milliseconds, when the host measured it. */
  elapsedMs?: number;
}

/** Runs Wasm policies by name (the server's worker pool implements it; core stays free of Node APIs). */
export interface CasilWasmHost {
  /** Whether a module of this name is loaded; an engine whose document names a policy the host lacks is refused. */
  has(name: string): boolean;
  /**
   * Runs policy `name` on the payload bytes (UTF-8 JSON text, or the raw bytes of a binary payload). A rejection
   * counts as an error verdict: the inspection fails closed.
   */
  evaluate(name: string, payload: Uint8Array): Promise<CasilWasmResult>;
}

/**
 * The payload's format as inspected: "binary" for `payloadFormat: "binary"`, "empty" for zero bytes, else "json"
 * (the declared format; the text is not required to parse).
 */
export type CasilKind = "json" | "binary" | "empty";
/**
 * How serious the findings of one inspection are, in increasing order. Private keys and AWS secret keys are critical,
 * other probable secrets and blocked patterns high.
 */
export type CasilRisk = "none" | "low" | "medium" | "high" | "critical";

/** What the policies found in one input: its format and size, the highest risk, and flags naming each finding. */
export interface CasilClassification {
  /** The payload's format. */
  kind: CasilKind;
  /** The highest risk any finding raised; "none" when nothing was found. */
  risk: CasilRisk;
  /** contains_probable_secret, contains_private_key, contains_card_number, encoded_secret, oversize_payload,
   * partially_inspected, partially_redacted, matched_pattern, schema_invalid, redacted, field_header, field_room,
   * field_state_key, field_not_redactable, inspect_budget_exceeded, wasm_deny, wasm_error, wasm_disabled, ... */
  flags: string[];
  /** Size of the input's payload in bytes. */
  bytes: number;
  /** The kinds of probable secret found, in the payload or a field; undefined when none was. */
  secretKinds?: SecretKind[];
}

/** What a policy decides for one input, before the mode is applied (monitor turns it into allow). */
export interface CasilVerdict {
  /** What the policy decided. */
  action: CasilAction;
  /** The CASIL_* code of a block or redaction; undefined for allow. */
  reasonCode?: string;
  /** Human-readable reason of a block or redaction (names the rule, the secret kinds or the limit). */
  message?: string;
  /** What the policies found. */
  classification: CasilClassification;
  /** For redact: the redacted payload (delivered only when transportRedaction is on). */
  redacted?: Uint8Array;
  /** The payload as inspected, when it differs from the input's (trusted command fields removed). */
  inspected?: Uint8Array;
}

/** A structured audit record, one per block or redaction (including what monitor mode would have done). */
export interface CasilAuditRecord {
  /** Which kind of decision the record is about. */
  event: "casil.block" | "casil.redact";
  /** When the decision was made, ISO 8601 (UTC). */
  time: string;
  /** Whether traffic was changed (false in monitor mode, and for log-only redaction). */
  enforced: boolean;
  /** The mode the inspection ran in. */
  mode: CasilMode;
  /** Version of the policy that decided. */
  policyVersion: number;
  /** The input's tenant. */
  tenant: string;
  /** The input's room, when it had one. */
  room?: string;
  /** How the content entered. */
  path: InspectionPath;
  /** The input's subject (token `sub` or operator name), when it had one. */
  subject?: string;
  /** The command name, for the `command` path. */
  command?: string;
  /** The CASIL_* code of the block or redaction. */
  reasonCode: string;
  /** Human-readable reason, as the verdict gave it. */
  message?: string;
  /** The payload's format. */
  kind: CasilKind;
  /** The highest risk of the findings. */
  risk: CasilRisk;
  /** The classification's flags. */
  flags: string[];
  /** Size of the payload in bytes. */
  bytes: number;
  /** At most 512 characters of the payload with redactions applied and probable secrets masked. */
  payload?: string;
  /** True when NEVER_LOG_PAYLOAD_FOR matched the room. */
  payloadOmitted?: boolean;
  /** True when a tenant layer (not the operator's baseline) made the record; `policyVersion` is then the layer's. */
  layer?: boolean;
}

/** One inspection where the shadow policy's effective decision (action or reason code) differed from the live one. */
export interface CasilShadowDifference {
  /** The input's tenant. */
  tenant: string;
  /** The input's room, when it had one. */
  room?: string;
  /** How the content entered. */
  path: InspectionPath;
  /** The decision that was applied. */
  live: {
    /** What was applied: the live verdict after its mode (allow in monitor mode and for log-only redaction). */
    action: CasilAction;
    /** The decision's reason code; undefined for allow. */
    reasonCode?: string;
  };
  /** The decision the shadow policy would have applied (never applied). */
  shadow: {
    /** What the shadow policy decided, after its mode. */
    action: CasilAction;
    /** The decision's reason code; undefined for allow. */
    reasonCode?: string;
  };
}

/** The full outcome of one inspection. */
export interface CasilEvaluation {
  /** The decision `inspect` would return (the mode applied). */
  decision: Decision;
  /** The live policy's verdict; undefined when the input was out of scope or CASIL is disabled. */
  verdict?: CasilVerdict;
  /** The mode the inspection ran in ("enforce" when the options forced it). */
  mode: CasilMode;
  /**
   * The shadow policy's outcome; undefined when the document has no shadow, CASIL is disabled, or the shadow's
   * asynchronous (Wasm) evaluation rejected.
   */
  shadow?: {
    /** What the shadow policy would have decided (never applied). */
    decision: Decision;
    /** The shadow policy's verdict; undefined when it did not inspect the input (out of its scope or paths). */
    verdict?: CasilVerdict;
    /** Whether the shadow decision's action or reason code differs from the live one. */
    differs: boolean;
  };
}

/** Per-call options of `inspect` and `evaluate`. */
export interface CasilInspectOptions {
  /**
   * Evaluate the policy that applies as if its mode were "enforce" (a tenant layer asked for it): decisions change
   * traffic, telemetry and audit records say mode "enforce". A policy already in enforce mode is unaffected.
   * @default false
   */
  enforce?: boolean;
}

/** How `createCasilEngine` builds an engine. */
export interface CasilEngineConfig {
  /** The policy document (object, or JSON/YAML text). @default {} (defaults + env) */
  policy?: CasilPolicyDocument | string;
  /**
   * The policy is a tenant layer (see casilLayerSpec): env variables are ignored, `enabled`, `tenants` and `shadow`
   * are refused, and the built-ins the baseline already runs for every tenant are skipped unless the layer sets them:
   * the size check runs only when `maxPayloadBytes` is set, the probable-secret scan only when
   * `blockOnProbableSecret` is true. Audit records carry `layer: true`.
   * @default false
   */
  layer?: boolean;
  /** Env layer under the document (see casilConfigFromEnv); pass process.env on the server. Ignored for layers. @default {} */
  env?: Record<string, string | undefined>;
  /** The version stamped on decisions. @default 1 */
  version?: number;
  /** Needed when the document names Wasm policies. */
  wasm?: CasilWasmHost;
  /** Receives an audit record per block and per redaction. */
  audit?: (record: CasilAuditRecord) => void;
  /** Called for each inspection whose shadow decision differs from the live one; what it throws is ignored. */
  onShadowDifference?: (difference: CasilShadowDifference) => void;
  /** Counters to add to (share one across reloads). @default a new one */
  telemetry?: CasilTelemetry;
  /**
   * Wall-clock budget of the built-in policies of one inspection (Wasm policies have their own, in the host). Every
   * step is linear in its input; the engine checks the clock between steps (and between strings and patterns inside
   * redaction), and an inspection past the budget that then also spends half the budget of the process's CPU time
   * (so that a pause of the whole process, descheduled or collecting garbage, does not count as work) is a block with
   * CASIL_INTERNAL_ERROR (flag `inspect_budget_exceeded`) — subject to the mode like any block. One step may overrun
   * the budget before a check sees it. @default 50
   */
  timeBudgetMs?: number;
  /**
   * Milliseconds clock for the time budget (tests inject one; it then also stands in for the CPU clock that confirms
   * an overrun). @default performance.now
   */
  clock?: () => number;
  /** Milliseconds of the process's CPU time, which confirms an overrun of the budget. @default `clock` when one is injected, else process.cpuUsage */
  cpuClock?: () => number;
}

/** The process's CPU time (user + system) in ms; the wall clock where there is no `process.cpuUsage` (browsers). */
function processCpuMs(): number {
  if (typeof process === "undefined" || typeof process.cpuUsage !== "function") return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The CASIL engine: an Inspector configured by a policy document. Immutable; a reload builds a new engine. */
export interface CasilEngine extends Inspector {
  /** The version stamped on every decision (`policyVersion`). */
  readonly version: number;
  /** False when the document or the env kill switch turned CASIL off: every input is then allowed uninspected. */
  readonly enabled: boolean;
  /** The effective document (env layer combined with the policy document). */
  readonly document: CasilPolicyDocument;
  /** Decides for one input; without options it allocates nothing beyond what the policies found. */
  inspect(input: InspectionInput, options?: CasilInspectOptions): Decision | Promise<Decision>;
  /** Like inspect, with the verdict, classification and shadow outcome. Records telemetry and audit the same way. */
  evaluate(input: InspectionInput, options?: CasilInspectOptions): CasilEvaluation | Promise<CasilEvaluation>;
  /** The live settings for a tenant (tenant override over global over env over defaults). */
  settingsFor(tenant: string): ResolvedCasilSettings;
  /** Counter snapshot (decisions by tenant, mode, decision, reason; shadow differences; wasm outcomes). */
  stats(): CasilStatsSnapshot;
  /** The counters this engine records to (the config's, shared across reloads, or its own). */
  readonly telemetry: CasilTelemetry;
}

/** One tenant's effective policy settings, every field resolved (see `CasilPolicySpec` for their meaning). */
export interface ResolvedCasilSettings {
  /** The policy's own mode (an `enforce` inspect option can still force enforce per call). */
  mode: CasilMode;
  /** The effective default decision in this policy's own mode (unset: block in enforce, allow in monitor). */
  defaultDecision: CasilDefaultDecision;
  /** Room globs in scope. */
  include: string[];
  /** Room globs out of scope; exclude wins over include. */
  exclude: string[];
  /** Leading bytes the regex policies scan. */
  maxInspectBytes: number;
  /** Larger payloads are blocked (in a tenant layer only when the layer set it). */
  maxPayloadBytes: number;
  /** Whether probable secrets are blocked (else masked); in a tenant layer, whether the layer scans for them at all. */
  blockOnProbableSecret: boolean;
  /** Whether redaction changes what is delivered and stored. */
  transportRedaction: boolean;
  /** JSON paths redacted, as written in the policy. */
  redactionPaths: string[];
  /** Redaction regexes, as written in the policy (custom `redact` patterns are listed in `patterns`). */
  redactionPatterns: string[];
  /** Room globs whose payloads stay out of audit records. */
  neverLogPayloadFor: string[];
  /** The custom pattern rules, without their regexes. */
  patterns: Array<{
    /** The rule's name. */
    name: string;
    /** What a match does (unset in the policy: block). */
    action: "block" | "redact";
  }>;
  /** Globs of the schema-typed rooms. */
  schemaRooms: string[];
  /** Names of the Wasm policies. */
  wasm: string[];
  /** Inbound paths inspected. */
  paths: InspectionPath[];
  /** Which fields beside the payload are inspected. */
  fields: Required<CasilFieldOptions>;
}

/** What a field (room, header, state key) came to: a block, a match that asks for redaction, or nothing. */
type FieldFinding = { block: true; reasonCode: string; message: string; flags: string[]; risk: CasilRisk; secretKinds?: SecretKind[] } | { block: false; flags: string[]; redact: true } | null;

interface CompiledPolicy {
  settings: ResolvedCasilSettings;
  mode: CasilMode;
  includeAll: boolean;
  scopeCache: Map<string, boolean>;
  paths: Set<InspectionPath>;
  redactionPaths: PathSegment[][];
  redactPatterns: PolicyRegex[];
  blockPatterns: Array<{ name: string; re: PolicyRegex }>;
  /** The document's own defaultDecision; unset follows the evaluation mode. */
  explicitDefault: CasilDefaultDecision | undefined;
  /** Whether any policy looks at field text (secrets, block or redaction patterns). */
  inspectsFields: boolean;
  /** Room name → its finding (room names repeat; bounded like scopeCache). */
  roomCache: Map<string, FieldFinding>;
  schemas: Array<{ glob: string; validate: ValidateFunction }>;
  wasm: Array<{ name: string; rooms?: string[]; paths?: Set<InspectionPath> }>;
  /** Whether the size check runs (always in a baseline; in a layer only when it sets maxPayloadBytes). */
  checkSize: boolean;
  /** Whether the probable-secret scan runs (always in a baseline; in a layer only with blockOnProbableSecret: true). */
  scanSecrets: boolean;
  /** Whether any regex policy needs the decoded text. */
  needsText: boolean;
  allow: Decision;
}

const DEFAULT_TIME_BUDGET_MS = 50;
const defaultClock = (): number => performance.now();

const SCHEMA_PATHS = new Set<InspectionPath>(["publish", "server_publish", "operator"]);

/** The default decision a policy that does not set one has in `mode`. */
function defaultFor(mode: CasilMode): CasilDefaultDecision {
  return mode === "enforce" ? "block" : CASIL_DEFAULTS.defaultDecision;
}
const AUDIT_EXCERPT = 512;
const SCOPE_CACHE_MAX = 4096;

function compileRegex(source: string, flags: string, where: string): PolicyRegex {
  const re = compilePolicyRegex(source, flags);
  if (typeof re === "string") throw casilValidationError(`${where}: ${re}`, { path: where });
  return re;
}

function compilePolicy(spec: CasilPolicySpec, where: string, ajv: () => Ajv, wasmHost: CasilWasmHost | undefined, version: number, layer: boolean): CompiledPolicy {
  const include = spec.scope?.include ?? [...CASIL_DEFAULTS.include];
  const exclude = spec.scope?.exclude ?? [...CASIL_DEFAULTS.exclude];
  const redactionPaths = (spec.redactionPaths ?? []).map((p, i) => {
    const parsed = parseJsonPath(p);
    if (typeof parsed === "string") throw casilValidationError(`${where}.redactionPaths[${i}]: ${parsed}`, { path: `${where}.redactionPaths[${i}]` });
    return parsed;
  });
  const redactPatterns = (spec.redactionPatterns ?? []).map((p, i) => compileRegex(p, "", `${where}.redactionPatterns[${i}]`));
  const blockPatterns: CompiledPolicy["blockPatterns"] = [];
  for (const [i, rule] of (spec.patterns ?? []).entries()) {
    const re = compileRegex(rule.pattern, rule.flags ?? "", `${where}.patterns[${i}] ("${rule.name}")`);
    if ((rule.action ?? "block") === "redact") redactPatterns.push(re);
    else blockPatterns.push({ name: rule.name, re });
  }
  const schemas: CompiledPolicy["schemas"] = [];
  for (const [glob, schema] of Object.entries(spec.schemas ?? {})) {
    const problem = schemaProblem(schema);
    if (problem) throw casilValidationError(`${where}.schemas["${glob}"]: ${problem}`, { path: `${where}.schemas` });
    try {
      schemas.push({ glob, validate: ajv().compile(schema) });
    } catch (err) {
      throw casilValidationError(`${where}.schemas["${glob}"]: ${(err as Error).message}`, { path: `${where}.schemas` });
    }
  }
  const wasm = (spec.wasm ?? []).map((rule, i) => {
    if (!wasmHost) throw casilValidationError(`${where}.wasm[${i}]: Wasm policy "${rule.name}" needs a Wasm host (server only)`);
    if (!wasmHost.has(rule.name)) throw casilValidationError(`${where}.wasm[${i}]: Wasm policy "${rule.name}" is not loaded`);
    return { name: rule.name, rooms: rule.rooms, paths: rule.paths ? new Set(rule.paths) : undefined };
  });
  const paths = spec.paths ?? [...INSPECTION_PATHS];
  const mode = spec.mode ?? CASIL_DEFAULTS.mode;
  const checkSize = !layer || spec.maxPayloadBytes !== undefined;
  const scanSecrets = !layer || spec.blockOnProbableSecret === true;
  const fields: Required<CasilFieldOptions> = { headers: spec.fields?.headers ?? true, room: spec.fields?.room ?? true, stateKeys: spec.fields?.stateKeys ?? true };
  const settings: ResolvedCasilSettings = {
    mode,
    defaultDecision: spec.defaultDecision ?? defaultFor(mode),
    include,
    exclude,
    maxInspectBytes: spec.maxInspectBytes ?? CASIL_DEFAULTS.maxInspectBytes,
    maxPayloadBytes: spec.maxPayloadBytes ?? CASIL_DEFAULTS.maxPayloadBytes,
    blockOnProbableSecret: layer ? scanSecrets : (spec.blockOnProbableSecret ?? CASIL_DEFAULTS.blockOnProbableSecret),
    transportRedaction: spec.transportRedaction ?? CASIL_DEFAULTS.transportRedaction,
    redactionPaths: spec.redactionPaths ?? [],
    redactionPatterns: spec.redactionPatterns ?? [],
    neverLogPayloadFor: spec.neverLogPayloadFor ?? [],
    patterns: (spec.patterns ?? []).map((p) => ({ name: p.name, action: p.action ?? "block" })),
    schemaRooms: schemas.map((s) => s.glob),
    wasm: wasm.map((w) => w.name),
    paths,
    fields,
  };
  return {
    settings,
    mode,
    includeAll: include.includes("**") && exclude.length === 0,
    scopeCache: new Map(),
    paths: new Set(paths),
    redactionPaths,
    redactPatterns,
    blockPatterns,
    schemas,
    wasm,
    checkSize,
    scanSecrets,
    needsText: scanSecrets || blockPatterns.length > 0,
    explicitDefault: spec.defaultDecision,
    inspectsFields: (fields.headers || fields.room || fields.stateKeys) && (scanSecrets || blockPatterns.length > 0 || redactPatterns.length > 0),
    roomCache: new Map(),
    allow: Object.freeze({ action: "allow", policyVersion: version }) as Decision,
  };
}

function inScope(policy: CompiledPolicy, room: string | undefined): boolean {
  if (policy.includeAll) return true;
  const key = room ?? "";
  const cached = policy.scopeCache.get(key);
  if (cached !== undefined) return cached;
  const { include, exclude } = policy.settings;
  const result = !exclude.some((g) => roomMatches(g, key)) && include.some((g) => roomMatches(g, key));
  if (policy.scopeCache.size >= SCOPE_CACHE_MAX) policy.scopeCache.clear();
  policy.scopeCache.set(key, result);
  return result;
}

function anyGlob(globs: readonly string[], room: string | undefined): boolean {
  const key = room ?? "";
  return globs.some((g) => roomMatches(g, key));
}

const RISK_ORDER: CasilRisk[] = ["none", "low", "medium", "high", "critical"];
function raise(c: CasilClassification, risk: CasilRisk): void {
  if (RISK_ORDER.indexOf(risk) > RISK_ORDER.indexOf(c.risk)) c.risk = risk;
}

function block(c: CasilClassification, reasonCode: string, message: string, risk: CasilRisk): CasilVerdict {
  raise(c, risk);
  return { action: "block", reasonCode, message, classification: c };
}

/** The admin reload command carries policy text (patterns, sample secrets); only the size policy applies to it. */
function isCasilCommand(input: InspectionInput): boolean {
  return input.path === "command" && typeof input.command === "string" && input.command.startsWith("op.casil.");
}

const NO_HITS: SecretHit[] = [];

/** Thrown inside the built-ins when the time budget is spent; becomes a fail-closed block. */
class BudgetExceeded extends Error {
  constructor(readonly step: string) {
    super(step);
  }
}

/** The clock of one inspection: `check(step)` throws BudgetExceeded once the budget is spent. */
interface Budget {
  check(step: string): void;
}

interface Pending {
  verdict: CasilVerdict;
  wasm: CompiledPolicy["wasm"];
  /** The payload the policies saw (and Wasm policies get): the input's, minus trusted command fields. */
  payload: Uint8Array;
}

function secretFlags(c: CasilClassification, hits: SecretHit[]): { kinds: SecretKind[]; risk: CasilRisk } {
  const kinds = [...new Set(hits.map((h) => h.kind))];
  c.secretKinds = [...new Set([...(c.secretKinds ?? []), ...kinds])];
  if (!c.flags.includes("contains_probable_secret")) c.flags.push("contains_probable_secret");
  if (kinds.includes("private_key") && !c.flags.includes("contains_private_key")) c.flags.push("contains_private_key");
  if (kinds.includes("card_number") && !c.flags.includes("contains_card_number")) c.flags.push("contains_card_number");
  if (hits.some((h) => h.encoded) && !c.flags.includes("encoded_secret")) c.flags.push("encoded_secret");
  return { kinds, risk: kinds.includes("private_key") || kinds.includes("aws_secret_key") ? "critical" : "high" };
}

const FIELD_FLAG = { header: "field_header", room: "field_room", state_key: "field_state_key" } as const;
type FieldKind = keyof typeof FIELD_FLAG;

/**
 * Inspects one field's text with the policy's secret and pattern rules. `nameSaysSecret` marks a header whose name
 * announces a secret (`x-api-key`): a non-empty value is then a password_field hit.
 */
function inspectField(policy: CompiledPolicy, kind: FieldKind, label: string, text: string, nameSaysSecret = false): FieldFinding {
  const s = policy.settings;
  const flag = FIELD_FLAG[kind];
  if (text.length > s.maxInspectBytes) text = text.slice(0, s.maxInspectBytes);
  if (policy.scanSecrets) {
    const hits = findSecrets(text);
    if (hits.length === 0 && nameSaysSecret && text.length > 0 && text !== REDACTED) hits.push({ kind: "password_field", index: 0, length: text.length });
    if (hits.length > 0) {
      const probe: CasilClassification = { kind: "json", risk: "none", flags: [flag], bytes: 0 };
      const { kinds, risk } = secretFlags(probe, hits);
      if (s.blockOnProbableSecret) return { block: true, reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, message: `${label} contains a probable secret (${kinds.join(", ")})`, flags: probe.flags, risk, secretKinds: kinds };
      if (s.transportRedaction) {
        return { block: true, reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_SECRET, message: `${label} contains a probable secret (${kinds.join(", ")}) and cannot be redacted; blocked`, flags: [...probe.flags, "field_not_redactable"], risk, secretKinds: kinds };
      }
      return { block: false, flags: probe.flags, redact: true };
    }
  }
  for (const rule of policy.blockPatterns) {
    if (rule.re.test(text)) return { block: true, reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, message: `${label} matches blocked pattern "${rule.name}"`, flags: [flag, "matched_pattern"], risk: "high" };
  }
  for (const re of policy.redactPatterns) {
    if (!re.test(text)) continue;
    if (s.transportRedaction) return { block: true, reasonCode: ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, message: `${label} matches a redaction pattern and cannot be redacted; blocked`, flags: [flag, "field_not_redactable"], risk: "medium" };
    return { block: false, flags: [flag], redact: true };
  }
  return null;
}

/** The room, header and state-key findings, the first block first; non-block findings only add flags. */
function inspectFields(policy: CompiledPolicy, input: InspectionInput, c: CasilClassification): CasilVerdict | undefined {
  const f = policy.settings.fields;
  const findings: FieldFinding[] = [];
  if (f.room && input.room !== undefined && input.room !== "") {
    let finding = policy.roomCache.get(input.room);
    if (finding === undefined) {
      finding = inspectField(policy, "room", `room name "${input.room.length > 64 ? input.room.slice(0, 64) + "…" : input.room}"`, input.room);
      if (policy.roomCache.size >= SCOPE_CACHE_MAX) policy.roomCache.clear();
      policy.roomCache.set(input.room, finding);
    }
    findings.push(finding);
  }
  if (f.headers && input.headers) {
    for (const [name, value] of Object.entries(input.headers)) {
      if (typeof value !== "string") continue;
      findings.push(inspectField(policy, "header", `header name "${name.slice(0, 64)}"`, name));
      findings.push(inspectField(policy, "header", `header "${name.slice(0, 64)}"`, value, isSecretFieldName(name)));
    }
  }
  if (f.stateKeys && typeof input.stateKey === "string") findings.push(inspectField(policy, "state_key", "state key", input.stateKey));
  const add = (flags: string[]): void => {
    for (const fl of flags) if (!c.flags.includes(fl)) c.flags.push(fl);
  };
  for (const finding of findings) {
    if (finding?.block) {
      add(finding.flags);
      if (finding.secretKinds) c.secretKinds = [...new Set([...(c.secretKinds ?? []), ...finding.secretKinds])];
      return block(c, finding.reasonCode, finding.message, finding.risk);
    }
  }
  for (const finding of findings) {
    if (finding) {
      add(finding.flags);
      raise(c, "medium");
    }
  }
  return undefined;
}

/** For commands with trusted fields: the arguments without them, and the removed values. */
function stripTrusted(input: InspectionInput): { payload: Uint8Array; trusted?: Record<string, unknown>; tree?: Record<string, unknown> } {
  const names = input.trustedFields;
  if (input.path !== "command" || !names || names.length === 0 || input.payloadFormat === "binary" || input.payload.length === 0) return { payload: input.payload };
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(input.payload));
  } catch {
    return { payload: input.payload };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return { payload: input.payload };
  const tree = value as Record<string, unknown>;
  const trusted: Record<string, unknown> = {};
  let found = false;
  for (const name of names) {
    if (typeof name === "string" && Object.prototype.hasOwnProperty.call(tree, name)) {
      trusted[name] = tree[name];
      delete tree[name];
      found = true;
    }
  }
  if (!found) return { payload: input.payload };
  return { payload: utf8Encode(JSON.stringify(tree)), trusted, tree };
}

/**
 * Runs the built-in policies; returns the verdict, plus the Wasm policies still to run when it is not a block.
 * `mode` is the mode the inspection is evaluated in (it decides an unset defaultDecision).
 */
function runBuiltins(policy: CompiledPolicy, input: InspectionInput, mode: CasilMode, budget: Budget): Pending {
  const s = policy.settings;
  const bytes = input.payload.length;
  const kind: CasilKind = input.payloadFormat === "binary" ? "binary" : bytes === 0 ? "empty" : "json";
  const c: CasilClassification = { kind, risk: "none", flags: [], bytes };
  const none: CompiledPolicy["wasm"] = [];
  if (policy.checkSize && bytes > s.maxPayloadBytes) {
    c.flags.push("oversize_payload");
    return { verdict: block(c, ErrorCode.CASIL_POLICY_OVERSIZE, `payload of ${bytes} bytes exceeds the policy limit of ${s.maxPayloadBytes}`, "medium"), wasm: none, payload: input.payload };
  }
  if (isCasilCommand(input)) return { verdict: { action: "allow", classification: c }, wasm: none, payload: input.payload };
  const stripped = stripTrusted(input);
  const payload = stripped.payload;
  const fail = (verdict: CasilVerdict): Pending => {
    if (payload !== input.payload) verdict.inspected = payload;
    return { verdict, wasm: none, payload };
  };
  // Only text scans read a prefix; a policy with none (a bare layer, say) inspects everything it looks at.
  const partial = policy.needsText && payload.length > s.maxInspectBytes;
  if (partial) {
    c.flags.push("partially_inspected");
    raise(c, "low");
  }
  const text = policy.needsText && payload.length > 0 ? utf8Decode(partial ? payload.subarray(0, s.maxInspectBytes) : payload) : "";
  let tree: unknown;
  let treeParsed = false;
  const parseTree = (): unknown => {
    if (!treeParsed) {
      treeParsed = true;
      try {
        tree = kind === "json" ? (stripped.tree ?? JSON.parse(utf8Decode(payload))) : undefined;
      } catch {
        tree = undefined;
      }
      budget.check("parsing the payload");
    }
    return tree;
  };
  if (policy.schemas.length > 0 && SCHEMA_PATHS.has(input.path)) {
    const key = input.room ?? "";
    const typed = policy.schemas.find((sc) => roomMatches(sc.glob, key));
    if (typed) {
      if (payload.length > s.maxInspectBytes) {
        c.flags.push("schema_invalid");
        return fail(block(c, ErrorCode.CASIL_POLICY_SCHEMA, `room "${key}" is schema-typed: payload of ${bytes} bytes is larger than the ${s.maxInspectBytes} bytes a schema validates`, "low"));
      }
      const value = parseTree();
      const valid = value !== undefined && typed.validate(value);
      budget.check("schema validation");
      if (!valid) {
        c.flags.push("schema_invalid");
        const e = typed.validate.errors?.[0];
        const why = value === undefined ? "payload is not JSON" : `${e?.instancePath || "payload"} ${e?.message ?? "is invalid"}`;
        return fail(block(c, ErrorCode.CASIL_POLICY_SCHEMA, `room "${key}" is schema-typed: ${why}`, "low"));
      }
    }
  }
  let maskSecrets = false;
  const hits = policy.scanSecrets && text.length > 0 ? findSecrets(text, !s.blockOnProbableSecret) : NO_HITS;
  if (hits.length > 0) {
    const { kinds, risk } = secretFlags(c, hits);
    if (s.blockOnProbableSecret) return fail(block(c, ErrorCode.CASIL_POLICY_BLOCKED_SECRET, `payload contains a probable secret (${kinds.join(", ")})`, risk));
    raise(c, risk);
    maskSecrets = true;
  }
  if (text.length > 0) {
    for (const rule of policy.blockPatterns) {
      if (rule.re.test(text)) {
        c.flags.push("matched_pattern");
        return fail(block(c, ErrorCode.CASIL_POLICY_BLOCKED_PATTERN, `payload matches blocked pattern "${rule.name}"`, "high"));
      }
      budget.check(`pattern "${rule.name}"`);
    }
  }
  if (policy.inspectsFields) {
    const fieldBlock = inspectFields(policy, input, c);
    if (fieldBlock) return fail(fieldBlock);
  }
  budget.check("secret and pattern scans");
  if (partial && (policy.explicitDefault ?? defaultFor(mode)) === "block") {
    const why = policy.explicitDefault ? "the default decision is block" : "the default decision in enforce mode is block";
    return fail(block(c, ErrorCode.CASIL_POLICY_DEFAULT_BLOCK, `payload of ${payload.length} bytes is larger than the inspected ${s.maxInspectBytes} and ${why}`, "low"));
  }
  let verdict: CasilVerdict = { action: "allow", classification: c };
  if (kind === "json" && (policy.redactionPaths.length > 0 || policy.redactPatterns.length > 0 || maskSecrets)) {
    const value = parseTree();
    if (value !== undefined) {
      let count = 0;
      for (const segments of policy.redactionPaths) {
        count += redactPath(value, segments);
        budget.check("redaction paths");
      }
      // Regexes see string values up to maxInspectBytes characters in all; JSON paths and field names see everything.
      let chars = 0;
      let skipped = false;
      const scanText = policy.redactPatterns.length > 0 || maskSecrets;
      const root = mapStrings(value, (str, field) => {
        if (maskSecrets && field !== undefined && SECRET_FIELD_RE.test(field) && str !== REDACTED && str !== "") {
          count++;
          return REDACTED;
        }
        if (!scanText) return str;
        if (chars + str.length > s.maxInspectBytes) {
          skipped = true;
          return str;
        }
        chars += str.length;
        let out = str;
        for (const re of policy.redactPatterns) out = re.replace(out, REDACTED);
        if (maskSecrets) out = maskSecretsInText(out, REDACTED);
        if (out !== str) count++;
        budget.check("redaction patterns");
        return out;
      });
      if (skipped) c.flags.push("partially_redacted");
      if (count > 0) {
        c.flags.push("redacted");
        raise(c, "medium");
        if (stripped.trusted && typeof root === "object" && root !== null) Object.assign(root as Record<string, unknown>, stripped.trusted);
        verdict = { action: "redact", reasonCode: ErrorCode.CASIL_POLICY_REDACTED, message: `${count} value(s) redacted`, classification: c, redacted: utf8Encode(JSON.stringify(root)) };
      }
    }
  } else if (kind === "binary" && (policy.redactionPaths.length > 0 || policy.redactPatterns.length > 0 || maskSecrets)) {
    c.flags.push("redaction_skipped_binary");
  }
  if (payload !== input.payload) verdict.inspected = payload;
  if (policy.wasm.length === 0) return { verdict, wasm: none, payload };
  const key = input.room ?? "";
  const wasm = policy.wasm.filter((w) => (!w.paths || w.paths.has(input.path)) && (!w.rooms || w.rooms.some((g) => roomMatches(g, key))));
  return { verdict, wasm, payload };
}

/** Runs the built-ins under the time budget; a spent budget is a fail-closed block (CASIL_INTERNAL_ERROR). */
function runGuarded(policy: CompiledPolicy, input: InspectionInput, mode: CasilMode, clock: () => number, cpuClock: () => number, budgetMs: number): Pending {
  const start = clock();
  // The wall clock also runs while the process is descheduled or collecting garbage: on a loaded machine a small
  // payload could "take" 50 ms between two checks and be blocked for nothing. So the first check past the budget only
  // starts the process's CPU clock (nothing is read before, so an inspection within the budget pays nothing), and the
  // inspection is stopped once it also spent half the budget of CPU time after that: real work, not a pause.
  let cpuMark: number | undefined;
  const budget: Budget = {
    check(step) {
      if (clock() - start <= budgetMs) return;
      if (cpuMark === undefined) cpuMark = cpuClock();
      else if (cpuClock() - cpuMark > budgetMs / 2) throw new BudgetExceeded(step);
    },
  };
  try {
    return runBuiltins(policy, input, mode, budget);
  } catch (err) {
    if (!(err instanceof BudgetExceeded)) throw err;
    const kind: CasilKind = input.payloadFormat === "binary" ? "binary" : input.payload.length === 0 ? "empty" : "json";
    const c: CasilClassification = { kind, risk: "none", flags: ["inspect_budget_exceeded"], bytes: input.payload.length };
    const verdict = block(c, ErrorCode.CASIL_INTERNAL_ERROR, `inspection exceeded its time budget of ${budgetMs} ms (at ${err.step}); blocked`, "medium");
    return { verdict, wasm: [], payload: input.payload };
  }
}

async function runWasm(host: CasilWasmHost, pending: Pending, telemetry: CasilTelemetry): Promise<CasilVerdict> {
  const c = pending.verdict.classification;
  for (const rule of pending.wasm) {
    let result: CasilWasmResult;
    try {
      result = await host.evaluate(rule.name, pending.payload);
    } catch (err) {
      result = { verdict: "error", error: "host", reason: (err as Error).message };
    }
    if (result.verdict === "allow") {
      telemetry.recordWasm(rule.name, "allow");
      continue;
    }
    if (result.verdict === "deny") {
      telemetry.recordWasm(rule.name, "deny");
      c.flags.push("wasm_deny");
      return block(c, ErrorCode.CASIL_WASM_DENY, result.reason ? `${rule.name}: ${result.reason}` : `denied by Wasm policy "${rule.name}"`, "high");
    }
    const what = result.error ?? "error";
    telemetry.recordWasm(rule.name, what);
    c.flags.push("wasm_error", `wasm_${what}`);
    const message = what === "disabled" ? `Wasm policy "${rule.name}" is disabled after repeated failures; blocked` : `Wasm policy "${rule.name}" failed (${what}); blocked`;
    return block(c, ErrorCode.CASIL_INTERNAL_ERROR, message, "high");
  }
  return pending.verdict;
}

function excerptOf(input: InspectionInput, verdict: CasilVerdict): string {
  const source = verdict.redacted ?? verdict.inspected ?? input.payload;
  if (input.payloadFormat === "binary") return `<${source.length} binary bytes>`;
  const head = utf8Decode(source.subarray(0, AUDIT_EXCERPT * 4)).slice(0, AUDIT_EXCERPT);
  return maskSecretsInText(head, REDACTED);
}

interface CompiledDocument {
  global: CompiledPolicy;
  tenants: Map<string, CompiledPolicy>;
}

function compileDocument(
  doc: CasilPolicySpec & { tenants?: Record<string, CasilPolicySpec> },
  where: string,
  ajv: () => Ajv,
  host: CasilWasmHost | undefined,
  version: number,
  layer: boolean,
): CompiledDocument {
  const { tenants, ...global } = doc as CasilPolicyDocument;
  delete (global as CasilPolicyDocument).shadow;
  delete (global as CasilPolicyDocument).enabled;
  const compiled: CompiledDocument = { global: compilePolicy(global, where, ajv, host, version, layer), tenants: new Map() };
  for (const [tenant, spec] of Object.entries(tenants ?? {})) {
    compiled.tenants.set(tenant, compilePolicy(mergeSpec<CasilPolicySpec>(global, spec), `${where}.tenants.${tenant}`, ajv, host, version, layer));
  }
  return compiled;
}

/**
 * Builds an engine from a policy document layered over env variables and defaults. Every check (shape, regex safety,
 * JSON paths, schemas, Wasm names) happens here: an invalid document throws ArqonError VALIDATION_ERROR and no engine
 * exists. Inspection is synchronous unless a Wasm policy applies.
 */
export function createCasilEngine(config: CasilEngineConfig = {}): CasilEngine {
  const version = config.version ?? 1;
  const layer = config.layer === true;
  const doc = typeof config.policy === "string" ? parseCasilPolicy(config.policy) : validateCasilDocument(config.policy ?? {});
  if (layer) {
    for (const field of ["enabled", "tenants", "shadow"] as const) {
      if (doc[field] !== undefined) throw casilValidationError(`layer: "${field}" is not allowed in a tenant layer`, { path: `layer.${field}` });
    }
  }
  const document = layer ? doc : combineCasilConfig(casilConfigFromEnv(config.env ?? {}), doc);
  const enabled = document.enabled ?? true;
  let ajvInstance: Ajv | undefined;
  // Schema regexes run on the linear-time engine; allowMatchingProperties skips ajv's load-time native-RegExp check.
  const ajv = (): Ajv =>
    (ajvInstance ??= new Ajv({ allErrors: false, strict: false, strictSchema: true, validateFormats: false, allowMatchingProperties: true, code: { regExp: linearRegExpEngine } }));
  const live = compileDocument(document, layer ? "layer" : "policy", ajv, config.wasm, version, layer);
  const shadowDoc = document.shadow;
  let shadow: CompiledDocument | undefined;
  if (shadowDoc) {
    const { tenants: shadowTenants, ...shadowGlobal } = shadowDoc;
    const { tenants: liveTenants, shadow: _s, enabled: _e, ...liveGlobal } = document;
    const merged: CasilPolicySpec & { tenants?: Record<string, CasilPolicySpec> } = mergeSpec<CasilPolicySpec>(liveGlobal, shadowGlobal);
    const tenantNames = new Set([...Object.keys(liveTenants ?? {}), ...Object.keys(shadowTenants ?? {})]);
    merged.tenants = {};
    for (const t of tenantNames) merged.tenants[t] = mergeSpec<CasilPolicySpec>(liveTenants?.[t] ?? {}, shadowTenants?.[t]);
    shadow = compileDocument(merged, "policy.shadow", ajv, config.wasm, version, false);
  }
  const telemetry = config.telemetry ?? new CasilTelemetry();
  const host = config.wasm;
  const clock = config.clock ?? defaultClock;
  // An injected wall clock drives the CPU confirmation too (tests); else the process's CPU time.
  const cpuClock = config.cpuClock ?? config.clock ?? processCpuMs;
  const timeBudgetMs = config.timeBudgetMs ?? DEFAULT_TIME_BUDGET_MS;
  if (!(timeBudgetMs > 0)) throw casilValidationError("timeBudgetMs must be a positive number");
  const disabled: Decision = Object.freeze({ action: "allow", policyVersion: version }) as Decision;

  const policyOf = (compiled: CompiledDocument, tenant: string): CompiledPolicy => compiled.tenants.get(tenant) ?? compiled.global;

  function decide(policy: CompiledPolicy, verdict: CasilVerdict, mode: CasilMode): Decision {
    if (verdict.action === "allow") {
      return verdict.classification.flags.length === 0 ? policy.allow : { action: "allow", flags: verdict.classification.flags, policyVersion: version };
    }
    if (mode === "monitor") return { action: "allow", flags: [...verdict.classification.flags, `monitor_would_${verdict.action}`], policyVersion: version };
    if (verdict.action === "block") {
      return { action: "block", reasonCode: verdict.reasonCode!, message: verdict.message!, flags: verdict.classification.flags, policyVersion: version };
    }
    if (!policy.settings.transportRedaction) return { action: "allow", flags: [...verdict.classification.flags, "redacted_in_logs"], policyVersion: version };
    return { action: "redact", payload: verdict.redacted!, reasonCode: verdict.reasonCode!, flags: verdict.classification.flags, policyVersion: version };
  }

  function record(input: InspectionInput, policy: CompiledPolicy, verdict: CasilVerdict, decision: Decision, mode: CasilMode): void {
    telemetry.record(input.tenant, mode, verdict.action, verdict.reasonCode ?? "");
    if (verdict.action === "allow" || !config.audit) return;
    const omit = anyGlob(policy.settings.neverLogPayloadFor, input.room);
    const c = verdict.classification;
    const entry: CasilAuditRecord = {
      event: verdict.action === "block" ? "casil.block" : "casil.redact",
      time: new Date().toISOString(),
      enforced: decision.action !== "allow",
      mode,
      policyVersion: version,
      tenant: input.tenant,
      path: input.path,
      reasonCode: verdict.reasonCode!,
      kind: c.kind,
      risk: c.risk,
      flags: c.flags,
      bytes: c.bytes,
    };
    if (input.room !== undefined) entry.room = input.room;
    if (input.subject !== undefined) entry.subject = input.subject;
    if (input.command !== undefined) entry.command = input.command;
    if (verdict.message) entry.message = verdict.message;
    if (omit) entry.payloadOmitted = true;
    else entry.payload = excerptOf(input, verdict);
    if (layer) entry.layer = true;
    try {
      config.audit(entry);
    } catch {
      // An audit sink that throws must not turn an inspection into an error; the counters still have it.
    }
  }

  function verdictOf(policy: CompiledPolicy, input: InspectionInput, mode: CasilMode): CasilVerdict | Promise<CasilVerdict> | undefined {
    if (!policy.paths.has(input.path) || !inScope(policy, input.room)) return undefined;
    const pending = runGuarded(policy, input, mode, clock, cpuClock, timeBudgetMs);
    if (pending.wasm.length === 0 || pending.verdict.action === "block") return pending.verdict;
    return runWasm(host!, pending, telemetry);
  }

  function finishShadow(input: InspectionInput, liveDecision: Decision, shadowPolicy: CompiledPolicy, sv: CasilVerdict | undefined, forced: boolean): NonNullable<CasilEvaluation["shadow"]> {
    const sd = sv ? decide(shadowPolicy, sv, forced ? "enforce" : shadowPolicy.mode) : shadowPolicy.allow;
    const reasonOf = (d: Decision): string | undefined => (d.action === "allow" ? undefined : d.reasonCode);
    const differs = sd.action !== liveDecision.action || reasonOf(sd) !== reasonOf(liveDecision);
    if (differs) {
      telemetry.recordShadowDifference(input.tenant);
      try {
        config.onShadowDifference?.({
          tenant: input.tenant,
          room: input.room,
          path: input.path,
          live: { action: liveDecision.action, reasonCode: reasonOf(liveDecision) },
          shadow: { action: sd.action, reasonCode: reasonOf(sd) },
        });
      } catch {
        // A failing listener does not change traffic.
      }
    }
    return { decision: sd, verdict: sv, differs };
  }

  function evaluate(input: InspectionInput, options?: CasilInspectOptions): CasilEvaluation | Promise<CasilEvaluation> {
    const forced = options !== undefined && options.enforce === true;
    if (!enabled) return { decision: disabled, mode: forced ? "enforce" : live.global.mode };
    const policy = policyOf(live, input.tenant);
    const mode: CasilMode = forced ? "enforce" : policy.mode;
    const v = verdictOf(policy, input, mode);
    const finish = (verdict: CasilVerdict | undefined): CasilEvaluation | Promise<CasilEvaluation> => {
      let decision: Decision;
      if (verdict) {
        decision = decide(policy, verdict, mode);
        record(input, policy, verdict, decision, mode);
      } else decision = policy.allow;
      const result: CasilEvaluation = { decision, verdict, mode };
      if (!shadow) return result;
      const shadowPolicy = policyOf(shadow, input.tenant);
      let sv: CasilVerdict | Promise<CasilVerdict> | undefined;
      try {
        sv = verdictOf(shadowPolicy, { ...input }, forced ? "enforce" : shadowPolicy.mode);
      } catch {
        sv = undefined;
      }
      if (sv instanceof Promise) {
        return sv.then(
          (resolved) => ({ ...result, shadow: finishShadow(input, decision, shadowPolicy, resolved, forced) }),
          () => result,
        );
      }
      result.shadow = finishShadow(input, decision, shadowPolicy, sv, forced);
      return result;
    };
    return v instanceof Promise ? v.then(finish) : finish(v);
  }

  return {
    version,
    enabled,
    document,
    telemetry,
    inspect(input, options) {
      if (!enabled) return disabled;
      if (!shadow) {
        // Hot path: no evaluation object unless something was found.
        const policy = policyOf(live, input.tenant);
        const mode: CasilMode = options !== undefined && options.enforce === true ? "enforce" : policy.mode;
        const v = verdictOf(policy, input, mode);
        if (v === undefined) return policy.allow;
        const finish = (verdict: CasilVerdict): Decision => {
          const decision = decide(policy, verdict, mode);
          record(input, policy, verdict, decision, mode);
          return decision;
        };
        return v instanceof Promise ? v.then(finish) : finish(v);
      }
      const e = evaluate(input, options);
      return e instanceof Promise ? e.then((r) => r.decision) : e.decision;
    },
    evaluate,
    settingsFor(tenant) {
      return policyOf(live, tenant).settings;
    },
    stats() {
      return telemetry.snapshot();
    },
  };
}
