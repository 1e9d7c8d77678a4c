import type { PayloadFormat } from "../frame/types.js";

/** Every way content enters the bus; each is inspected (no path bypasses CASIL). */
export type InspectionPath = "publish" | "server_publish" | "presence" | "state" | "command" | "operator";

/**
 * One piece of inbound content. Besides the payload, the room name, header names and values and the state key are
 * inspected as text by the same pattern and secret policies (each can be turned off per policy with `fields`), so
 * text moved out of the payload is still seen.
 */
export interface InspectionInput {
  tenant: string;
  /** The room the content goes to; inspected as text unless the policy sets `fields.room: false`. */
  room?: string;
  path: InspectionPath;
  /** The token's `sub`, or the operator's name. */
  subject?: string;
  payload: Uint8Array;
  payloadFormat?: PayloadFormat;
  /** The message's headers as the sender gave them; names and values are inspected unless `fields.headers: false`. */
  headers?: Record<string, string>;
  /** For `state`: the key being written; inspected as text unless `fields.stateKeys: false`. */
  stateKey?: string;
  /** For `command`: the command name. */
  command?: string;
  /**
   * For `command`: names of top-level fields of the JSON object arguments that are not content (a trusted command's
   * designated secret argument, such as `secret` of `op.webhook.register`). They are removed before inspection and
   * put back unchanged into a redacted payload. Only the server sets it, from the command's registration; never
   * from what a client sends. Ignored on other paths and for arguments that are not a JSON object.
   */
  trustedFields?: readonly string[];
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
