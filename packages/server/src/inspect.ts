import { ArqonError, ErrorCode, type Decision, type InspectionInput, type Inspector } from "@arqon/core";
import type { Logger } from "pino";

/**
 * Runs the CASIL hook, failing closed: an inspector that throws or rejects blocks with CASIL_INTERNAL_ERROR.
 * Returns the payload to use (the original, or the redacted one); a block throws an ArqonError carrying the reason
 * code, which every handler turns into an error frame with the request id, before anything is stored or delivered.
 */
export async function inspectOrThrow(inspector: Inspector, input: InspectionInput, logger: Logger): Promise<{ payload: Uint8Array; decision: Decision }> {
  let decision: Decision;
  try {
    decision = await inspector.inspect(input);
  } catch (err) {
    logger.error({ err, path: input.path, tenant: input.tenant }, "inspector failed; blocking");
    throw new ArqonError(ErrorCode.CASIL_INTERNAL_ERROR, "content inspection failed");
  }
  switch (decision?.action) {
    case "allow":
      return { payload: input.payload, decision };
    case "redact":
      return { payload: decision.payload, decision };
    case "block":
      throw new ArqonError(decision.reasonCode || ErrorCode.CASIL_POLICY_DEFAULT_BLOCK, decision.message || "blocked by policy", {
        detail: { flags: decision.flags },
      });
    default:
      logger.error({ path: input.path }, "inspector returned no decision; blocking");
      throw new ArqonError(ErrorCode.CASIL_INTERNAL_ERROR, "content inspection returned no decision");
  }
}
