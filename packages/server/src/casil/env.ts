import { readFile } from "node:fs/promises";
import path from "node:path";
import { ArqonError, ErrorCode, casilConfigFromEnv } from "@arqon/core";
import { CasilController, type CasilControllerOptions } from "./controller.js";

function positiveInt(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `${name} must be a positive integer, not "${raw}"`);
  return Number(raw);
}

/**
 * Builds the CASIL controller a server process asks for through its environment, or undefined when CASIL is off.
 * On when ARQON_CASIL_ENABLED is true or ARQON_CASIL_POLICY_FILE is set; ARQON_CASIL_ENABLED=false always means off.
 * The ARQON_CASIL_* policy variables (see casilConfigFromEnv) form the layer under the policy file, which is watched
 * and reloaded on change unless ARQON_CASIL_WATCH=false. Wasm pool: ARQON_CASIL_WASM_BUDGET_MS,
 * ARQON_CASIL_WASM_MAX_PAGES, ARQON_CASIL_WASM_WORKERS. Throws VALIDATION_ERROR on a bad variable or policy.
 */
export async function createCasilFromEnv(
  env: Record<string, string | undefined>,
  options: Omit<CasilControllerOptions, "env" | "policy"> = {},
): Promise<CasilController | undefined> {
  const layer = casilConfigFromEnv(env);
  const file = env.ARQON_CASIL_POLICY_FILE?.trim() || undefined;
  if (layer.enabled === false || (layer.enabled === undefined && !file)) return undefined;
  const budgetMs = positiveInt(env, "ARQON_CASIL_WASM_BUDGET_MS");
  const maxMemoryPages = positiveInt(env, "ARQON_CASIL_WASM_MAX_PAGES");
  const workers = positiveInt(env, "ARQON_CASIL_WASM_WORKERS");
  let policy: string | undefined;
  if (file) {
    try {
      policy = await readFile(file, "utf8");
    } catch (err) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `ARQON_CASIL_POLICY_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }
  const controller = await CasilController.create({
    ...options,
    env,
    policy,
    baseDir: file ? path.dirname(path.resolve(file)) : options.baseDir,
    wasm: { ...options.wasm, ...(budgetMs ? { budgetMs } : {}), ...(maxMemoryPages ? { maxMemoryPages } : {}), ...(workers ? { workers } : {}) },
  });
  const watchOff = ["false", "0", "no", "off"].includes(env.ARQON_CASIL_WATCH?.trim().toLowerCase() ?? "");
  if (file && !watchOff) {
    try {
      await controller.watchFile(file, { loadedText: policy });
    } catch (err) {
      await controller.close();
      throw err;
    }
  }
  return controller;
}
