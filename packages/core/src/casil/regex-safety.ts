/**
 * Load-time check that a custom CASIL regex cannot backtrack catastrophically. The rule (documented in docs/casil.md):
 *
 * - star height at most 1: a quantifier that repeats (`*`, `+`, `{n,}`, `{n,m}` with m > 1) may not apply to a group
 *   that itself contains a repeating quantifier — `(a+)+`, `(a*)*`, `(?:\w+\s?)*`, `(a{1,5}){2,}` are refused;
 * - a repeated group may not hold two identical alternatives (`(a|a)*`);
 * - no backreferences (`\1`, `\k<name>`): they are not regular and can force exponential search;
 * - at most {@link MAX_PATTERN_LENGTH} characters, and it must compile.
 *
 * Inputs are further bounded at run time: a pattern only ever sees the first `maxInspectBytes` of a payload.
 */

export const MAX_PATTERN_LENGTH = 512;

interface GroupFrame {
  start: number;
  containsRepeat: boolean;
  bars: number[];
}

interface Atom {
  containsRepeat: boolean;
  /** For groups: the source of each top-level alternative. */
  alternatives?: string[];
}

/** Returns why `source` is refused, or undefined when it is acceptable. */
export function regexProblem(source: string, flags = ""): string | undefined {
  if (typeof source !== "string" || source.length === 0) return "pattern is empty";
  if (source.length > MAX_PATTERN_LENGTH) return `pattern is longer than ${MAX_PATTERN_LENGTH} characters`;
  if (!/^[imsuy]*$/.test(flags) || new Set(flags).size !== flags.length) return `flags "${flags}" are not allowed (use i, m, s, u)`;
  try {
    new RegExp(source, flags);
  } catch (err) {
    return `pattern does not compile: ${(err as Error).message}`;
  }
  const stack: GroupFrame[] = [{ start: 0, containsRepeat: false, bars: [] }];
  let last: Atom | undefined;
  let i = 0;
  const n = source.length;
  while (i < n) {
    const ch = source[i]!;
    const top = stack[stack.length - 1]!;
    if (ch === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") return "backreferences are not allowed";
      i += 2;
      if ((next === "p" || next === "P" || next === "u") && source[i] === "{") {
        const close = source.indexOf("}", i);
        i = close < 0 ? n : close + 1;
      }
      last = { containsRepeat: false };
      continue;
    }
    if (ch === "[") {
      i++;
      if (source[i] === "^") i++;
      if (source[i] === "]") i++;
      while (i < n && source[i] !== "]") i += source[i] === "\\" ? 2 : 1;
      i++;
      last = { containsRepeat: false };
      continue;
    }
    if (ch === "(") {
      let j = i + 1;
      if (source[j] === "?") {
        j++;
        if (source[j] === "<" && source[j + 1] !== "=" && source[j + 1] !== "!") {
          const close = source.indexOf(">", j);
          j = close < 0 ? n : close + 1;
        } else if (source[j] === "<") j += 2;
        else j++;
      }
      stack.push({ start: j, containsRepeat: false, bars: [] });
      last = undefined;
      i = j;
      continue;
    }
    if (ch === ")") {
      if (stack.length === 1) return "unbalanced parenthesis";
      const frame = stack.pop()!;
      const cuts = [frame.start - 1, ...frame.bars, i];
      const alternatives: string[] = [];
      for (let k = 0; k + 1 < cuts.length; k++) alternatives.push(source.slice(cuts[k]! + 1, cuts[k + 1]));
      last = { containsRepeat: frame.containsRepeat, alternatives };
      stack[stack.length - 1]!.containsRepeat ||= frame.containsRepeat;
      i++;
      continue;
    }
    if (ch === "|") {
      top.bars.push(i);
      last = undefined;
      i++;
      continue;
    }
    const quant = readQuantifier(source, i);
    if (quant) {
      if (last) {
        if (quant.repeats && last.containsRepeat) {
          return `nested quantifier near position ${i}: a repeated group may not contain a repeated part (star height > 1)`;
        }
        if (quant.repeats && last.alternatives && new Set(last.alternatives).size !== last.alternatives.length) {
          return `repeated group near position ${i} has identical alternatives`;
        }
        if (quant.repeats) top.containsRepeat = true;
      }
      last = undefined;
      i = quant.end;
      if (source[i] === "?") i++;
      continue;
    }
    last = { containsRepeat: false };
    i++;
  }
  if (stack.length !== 1) return "unbalanced parenthesis";
  return undefined;
}

function readQuantifier(source: string, i: number): { repeats: boolean; end: number } | undefined {
  const ch = source[i];
  if (ch === "*" || ch === "+") return { repeats: true, end: i + 1 };
  if (ch === "?") return { repeats: false, end: i + 1 };
  if (ch !== "{") return undefined;
  const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i, i + 24));
  if (!m) return undefined;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === "" ? Infinity : Number(m[3]);
  return { repeats: max > 1, end: i + m[0].length };
}
