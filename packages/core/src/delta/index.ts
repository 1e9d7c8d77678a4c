export {
  createDelta,
  applyDelta,
  DeltaEncoder,
  DeltaCursor,
  DeltaDecoder,
  DEFAULT_MAX_DELTA_OUTPUT_BYTES,
  type DeltaEncoding,
  type DeltaEncoderOptions,
} from "./delta.js";
