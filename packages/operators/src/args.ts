import { ArqonError, ErrorCode } from "@arqon/core";

/** Small argument readers that answer VALIDATION_ERROR with the field name. */
export function argsObject(args: unknown): Record<string, unknown> {
  if (args === undefined || args === null) return {};
  if (typeof args !== "object" || Array.isArray(args)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "args must be a JSON object");
  return args as Record<string, unknown>;
}

export function str(args: Record<string, unknown>, name: string, options: { max?: number; pattern?: RegExp; optional?: boolean } = {}): string {
  const value = args[name];
  if (value === undefined && options.optional) return "";
  if (typeof value !== "string" || value.length === 0) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"${name}" must be a non-empty string`);
  if (value.length > (options.max ?? 256)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"${name}" is longer than ${options.max ?? 256}`);
  if (options.pattern && !options.pattern.test(value)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"${name}" has characters that are not allowed`);
  return value;
}

export function int(args: Record<string, unknown>, name: string, options: { min?: number; max?: number; fallback?: number } = {}): number {
  const value = args[name];
  if (value === undefined && options.fallback !== undefined) return options.fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"${name}" must be an integer`);
  if ((options.min !== undefined && value < options.min) || (options.max !== undefined && value > options.max)) {
    throw new ArqonError(ErrorCode.VALIDATION_ERROR, `"${name}" must be between ${options.min ?? "-∞"} and ${options.max ?? "∞"}`);
  }
  return value;
}

export const NAME_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
