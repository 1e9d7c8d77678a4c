import type { PayloadFormat } from "../frame/types.js";

/** Every way content enters the bus; each is inspected (no path bypasses CASIL). */
export type InspectionPath = "publish" | "server_publish" | "presence" | "state" | "command" | "operator";

export interface InspectionInput {
  tenant: string;
  room?: string;
  path: InspectionPath;
  /** The token's `sub`, or the operator's name. */
  subject?: string;
  payload: Uint8Array;
  payloadFormat?: PayloadFormat;
  headers?: Record<string, string>;
  /** For `command`: the command name. */
  command?: string;
}

/**
 * What an inspector decided. `policyVersion` is the version of the operator's policy (the baseline) that decided;
 * `layerVersion` is set when the tenant's own CASIL layer was evaluated too (server: LayeredCasil).
 */
export type Decision =
  | { action: "allow"; flags?: string[]; policyVersion?: number; layerVersion?: number }
  | { action: "redact"; payload: Uint8Array; reasonCode: string; flags?: string[]; policyVersion?: number; layerVersion?: number }
  | { action: "block"; reasonCode: string; message: string; flags?: string[]; policyVersion?: number; layerVersion?: number };

/**
 * The CASIL hook: the gateway calls `inspect` on every inbound path before routing, storing or delivering.
 * A block stops the message (the sender gets an error frame with the reason code); a redact replaces the payload.
 * In monitor mode an inspector returns `allow` and records what enforce would have done.
 * An inspector that throws or rejects is treated as a block with CASIL_INTERNAL_ERROR (fail closed).
 */
export interface Inspector {
  inspect(input: InspectionInput): Decision | Promise<Decision>;
}

export const ALLOW: Decision = Object.freeze({ action: "allow" }) as Decision;

/** An inspector that allows everything (CASIL disabled). */
export const allowAll: Inspector = { inspect: () => ALLOW };
