/**
 * CASIL on Node: the hot-reloading controller (the gateway's Inspector), the Wasm policy worker pool, env loading,
 * the op.casil.* commands and Prometheus counters. The lead re-exports this from @arqon/server's index.
 */
export { CasilController, type CasilControllerOptions, type CasilReloadEvent, type CasilReloadSource, type CasilLogger } from "./controller.js";
export { WasmPolicyHost, type WasmPolicyHostOptions, type WasmBreakerEvent, type WasmBreakerStatus } from "./wasm-host.js";
export { checkWasmPolicyModule, WASM_PAGE_BYTES, MAX_WASM_MODULE_BYTES, type WasmModuleInfo } from "./wasm-module.js";
export { casilCommands, registerCasilCommands, type CasilCommand } from "./commands.js";
export { registerCasilMetrics } from "./metrics.js";
export { createCasilFromEnv } from "./env.js";
export {
  LayeredCasil,
  CASIL_LAYER_NAMESPACE,
  DEFAULT_TENANT_BUDGET,
  describeLayerChanges,
  type LayeredCasilOptions,
  type CasilTenantBudget,
  type StoredCasilLayer,
  type CasilLayerWriteOptions,
  type CasilLayerWriteResult,
  type CasilLayerPatch,
  type CasilTenantView,
  type CasilLayerSummary,
} from "./layers.js";
export { registerCasilLayerMetrics } from "./layer-metrics.js";
