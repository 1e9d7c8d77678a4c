import type { PayloadFormat } from "../frame/types.js";

/** Every way content enters the bus; each is inspected (no path bypasses CASIL). */
export type InspectionPath = "publish" | "server_publish" | "presence" | "state" | "command" | "operator";

/**
 * One piece of inbound content. Besides the payload, the room name, header names and values and the state key are
 * inspected as text by the same pattern and secret policies (each can be turned off per policy with `fields`), so
 * text moved out of the payload is still seen.
 */
export interface InspectionInput {
  /** The tenant the content belongs to; selects the tenant's policy (and, on the server, its layer). */
  tenant: string;
  /** The room the content goes to; inspected as text unless the policy sets `fields.room: false`. */
  room?: string;
  /** How the content entered; a policy inspects only the paths in its `paths`. */
  path: InspectionPath;
  /** The token's `sub`, or the operator's name. */
  subject?: string;
  /** The content itself: a message payload, presence info, a state value or command arguments. */
  payload: Uint8Array;
  /** "binary" payloads are scanned but never rewritten (a redaction is skipped). @default "json" */
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
  | {
      /** Let the content through unchanged. */
      action: "allow";
      /** What the policies found without acting on it (e.g. `monitor_would_block`, `redacted_in_logs`). */
      flags?: string[];
      /** Version of the baseline policy that decided; unset when no policy did (ALLOW, `allowAll`). */
      policyVersion?: number;
      /** Version of the tenant's layer, when one was evaluated. */
      layerVersion?: number;
    }
  | {
      /** Deliver and store `payload` instead of the original. */
      action: "redact";
      /** The redacted payload. */
      payload: Uint8Array;
      /** Why (CASIL_POLICY_REDACTED). */
      reasonCode: string;
      /** What the policies found (e.g. `redacted`, `contains_probable_secret`). */
      flags?: string[];
      /** Version of the baseline policy that decided. */
      policyVersion?: number;
      /** Version of the tenant's layer, when one was evaluated. */
      layerVersion?: number;
    }
  | {
      /** Stop the content: nothing is stored, delivered or acked. */
      action: "block";
      /** The error code the sender gets (a CASIL_* code, e.g. CASIL_POLICY_BLOCKED_SECRET). */
      reasonCode: string;
      /** Human-readable reason for the sender. */
      message: string;
      /** What the policies found (e.g. `contains_probable_secret`, `oversize_payload`). */
      flags?: string[];
      /** Version of the baseline policy that decided. */
      policyVersion?: number;
      /** Version of the tenant's layer, when one was evaluated. */
      layerVersion?: number;
    };

/**
 * The CASIL hook: the gateway calls `inspect` on every inbound path before routing, storing or delivering.
 * A block stops the message (the sender gets an error frame with the reason code); a redact replaces the payload.
 * In monitor mode an inspector returns `allow` and records what enforce would have done.
 * An inspector that throws or rejects is treated as a block with CASIL_INTERNAL_ERROR (fail closed).
 */
export interface Inspector {
  /** Decides for one piece of inbound content; may answer synchronously (the common case) or with a promise. */
  inspect(input: InspectionInput): Decision | Promise<Decision>;
}

/** The shared, frozen allow decision (no flags, no policy version). */
export const ALLOW: Decision = Object.freeze({ action: "allow" }) as Decision;

/** An inspector that allows everything (CASIL disabled). */
export const allowAll: Inspector = { inspect: () => ALLOW };
