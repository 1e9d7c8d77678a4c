/**
 * CASIL, the content-aware safety inspection layer: the policy engine (isomorphic) the gateway calls on every inbound
 * path. The lead re-exports this from @arqon/core's index (`export * from "./casil/index.js"`).
 *
 * @packageDocumentation
 */
export {
  createCasilEngine,
  type CasilEngine,
  type CasilEngineConfig,
  type CasilInspectOptions,
  type CasilEvaluation,
  type CasilVerdict,
  type CasilClassification,
  type CasilKind,
  type CasilRisk,
  type CasilAuditRecord,
  type CasilShadowDifference,
  type CasilWasmHost,
  type CasilWasmResult,
  type ResolvedCasilSettings,
} from "./engine.js";
export {
  casilConfigFromEnv,
  parseCasilPolicy,
  validateCasilDocument,
  combineCasilConfig,
  splitPatternList,
  CASIL_DEFAULTS,
  INSPECTION_PATHS,
  MAX_PATTERNS,
  MAX_SCHEMAS,
  MAX_WASM_POLICIES,
  type CasilMode,
  type CasilDefaultDecision,
  type CasilPolicyDocument,
  type CasilPolicySpec,
  type CasilPatternRule,
  type CasilWasmRule,
} from "./config.js";
export {
  validateCasilLayer,
  parseCasilLayer,
  casilLayerSpec,
  casilLayerModules,
  MAX_LAYER_BYTES,
  DEFAULT_LAYER_WASM_MODULE_BYTES,
  type CasilLayerDocument,
  type CasilLayerWasmRule,
  type CasilLayerLimits,
} from "./layer.js";
export { CasilTelemetry, type CasilAction, type CasilDecisionCount, type CasilStatsSnapshot } from "./telemetry.js";
export { regexProblem, compilePolicyRegex, MAX_PATTERN_LENGTH } from "./regex-safety.js";
export { schemaProblem } from "./schema-safety.js";
export { findSecrets, luhnValid, type SecretKind, type SecretHit } from "./secrets.js";
export { parseJsonPath, redactPath, REDACTED, type PathSegment } from "./json-path.js";
