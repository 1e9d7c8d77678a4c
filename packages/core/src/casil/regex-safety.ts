import { RE2JS } from "re2js";

/**
 * Policy regexes (custom `patterns`, `redactionPatterns`, JSON-Schema `pattern` / `patternProperties`) run on RE2JS,
 * a linear-time engine: matching costs O(text length × program size) whatever the pattern, so no pattern can
 * backtrack catastrophically. Load-time checks (documented in docs/casil.md, "Regex safety"):
 *
 * - at most {@link MAX_PATTERN_LENGTH} characters, flags only `i`, `m`, `s`, `u`;
 * - no backreferences (`\1`, `\k<name>`: not regular, RE2 has none) and no lookaheads (RE2 has none; captureless
 *   lookbehinds are supported, in linear time);
 * - it compiles under RE2 and its program has at most {@link MAX_PROGRAM_SIZE} instructions, which bounds the cost
 *   per input character.
 *
 * Patterns are written in JavaScript syntax and translated (`(?<name>…)`, `\u{…}`, `\cX`); RE2's classes are ASCII
 * (`\d`, `\w`, `\s`, `\b`) and `.` excludes only `\n`.
 */

/** Longest policy regex source accepted, in characters. */
export const MAX_PATTERN_LENGTH = 512;
/** Largest RE2 program (instructions) a policy regex may compile to. */
export const MAX_PROGRAM_SIZE = 400;

/** A compiled policy regex. Stateless: no `lastIndex`, safe to share. */
export interface PolicyRegex {
  readonly source: string;
  /** Whether the pattern matches anywhere in `text`. */
  test(text: string): boolean;
  /** `text` with every match replaced by `mask` (inserted literally). */
  replace(text: string, mask: string): string;
}

const FLAG_BITS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };

/** Finds a backreference or lookahead outside character classes; escaped backslashes are skipped. */
function unsupportedSyntax(source: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === "\\") {
      const next = source[i + 1] ?? "";
      if (!inClass && (/[1-9]/.test(next) || next === "k")) return "backreferences are not allowed";
      i++;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      continue;
    }
    if (ch === "[") inClass = true;
    else if (ch === "(" && source[i + 1] === "?" && (source[i + 2] === "=" || source[i + 2] === "!")) {
      return "lookaheads are not supported (the linear-time engine has none)";
    }
  }
  return undefined;
}

function compileOrProblem(source: string, flags: string): RE2JS | string {
  if (typeof source !== "string" || source.length === 0) return "pattern is empty";
  if (source.length > MAX_PATTERN_LENGTH) return `pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  if (typeof flags !== "string" || !/^[imsu]*$/.test(flags) || new Set(flags).size !== flags.length) return `flags "${String(flags)}" are not allowed (use i, m, s, u)`;
  const syntax = unsupportedSyntax(source);
  if (syntax) return syntax;
  let bits = RE2JS.LOOKBEHINDS;
  for (const f of flags) bits |= FLAG_BITS[f]!;
  let re: RE2JS;
  try {
    re = RE2JS.compile(RE2JS.translateRegExp(source) as string, bits);
  } catch (err) {
    return `pattern does not compile: ${(err as Error).message}`;
  }
  const size = re.programSize();
  if (size > MAX_PROGRAM_SIZE) return `pattern compiles to ${size} instructions, more than ${MAX_PROGRAM_SIZE} (simplify it or lower its repeat counts)`;
  return re;
}

/** Returns why `source` is refused, or undefined when it is acceptable (see the module comment for the rules). */
export function regexProblem(source: string, flags = ""): string | undefined {
  const result = compileOrProblem(source, flags);
  return typeof result === "string" ? result : undefined;
}

/** Compiles a policy regex on the linear-time engine; returns a reason string instead when it is refused. */
export function compilePolicyRegex(source: string, flags = ""): PolicyRegex | string {
  const re = compileOrProblem(source, flags);
  if (typeof re === "string") return re;
  return {
    source,
    test: (text: string) => re.test(text),
    replace: (text: string, mask: string) => (re.test(text) ? re.matcher(text).replaceAll(() => mask) : text),
  };
}

/**
 * The regex engine ajv compiles JSON-Schema `pattern` and `patternProperties` with (its `code.regExp` option): the
 * same linear-time engine and checks as policy regexes; a refused pattern throws, so the schema is refused at load.
 * Schema patterns are Unicode-aware whatever ajv's `u` argument says.
 */
export const linearRegExpEngine: ((pattern: string, u: string) => { test(s: string): boolean }) & { code: string } = Object.assign(
  (pattern: string): { test(s: string): boolean; toString(): string } => {
    const re = compilePolicyRegex(pattern);
    if (typeof re === "string") throw new Error(`pattern "${pattern}": ${re}`);
    // ajv keys its compiled patterns by toString(): it must differ per pattern.
    return { test: (s: string) => re.test(s), toString: () => `/${pattern}/re2` };
  },
  // Only used by ajv's standalone code generation, which CASIL never runs.
  { code: "casilLinearRegExp" },
);
