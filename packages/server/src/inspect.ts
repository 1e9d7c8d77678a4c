import { ArqonError, ErrorCode, type Decision, type InspectionInput, type Inspector } from "@arqon/core";
import type { Logger } from "pino";

/** What inspection lets through: the payload to use (the original or the redacted one) and the decision. */
export interface Inspected {
  payload: Uint8Array;
  decision: Decision;
}

/**
 * Runs the CASIL hook, failing closed: an inspector that throws or rejects blocks with CASIL_INTERNAL_ERROR.
 * Returns the payload to use (the original, or the redacted one); a block throws an ArqonError carrying the reason
 * code, which every handler turns into an error frame with the request id, before anything is stored or delivered.
 * An inspector that answers synchronously (`allowAll`, CASIL rules without Wasm) is answered synchronously, so the
 * publish path does not wait a microtask for it.
 */
export function inspectOrThrow(inspector: Inspector, input: InspectionInput, logger: Logger): Inspected | Promise<Inspected> {
  let answer: Decision | Promise<Decision>;
  try {
    answer = inspector.inspect(input);
  } catch (err) {
    return failed(err, input, logger);
  }
  if (typeof (answer as { then?: unknown } | undefined)?.then === "function") {
    return Promise.resolve(answer).then(
      (decision) => outcome(decision, input, logger),
      (err: unknown) => failed(err, input, logger),
    );
  }
  return outcome(answer as Decision, input, logger);
}

function failed(err: unknown, input: InspectionInput, logger: Logger): never {
  logger.error({ err, path: input.path, tenant: input.tenant }, "inspector failed; blocking");
  throw new ArqonError(ErrorCode.CASIL_INTERNAL_ERROR, "content inspection failed");
}

function outcome(decision: Decision, input: InspectionInput, logger: Logger): Inspected {
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
