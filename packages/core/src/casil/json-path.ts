/**
 * The JSON-path subset CASIL redaction understands: `$` followed by `.name`, `['name']` / `["name"]`, `[n]`, `.*` /
 * `[*]` (every child) and `..name` / `..*` (recursive descent). Filters and slices are not supported.
 */

export type PathSegment =
  | { type: "child"; name: string }
  | { type: "index"; index: number }
  | { type: "wildcard" }
  | { type: "descend"; name: string | undefined };

export const REDACTED = "[REDACTED]";
const MAX_DEPTH = 128;
const NAME_RE = /^[A-Za-z_$][\w$-]*/;

/** Parses a path; returns the segments, or a string saying what is wrong. */
export function parseJsonPath(path: string): PathSegment[] | string {
  if (typeof path !== "string" || !path.startsWith("$")) return `path "${String(path)}" must start with "$"`;
  const segments: PathSegment[] = [];
  let i = 1;
  while (i < path.length) {
    const rest = path.slice(i);
    if (rest.startsWith("..")) {
      const after = rest.slice(2);
      if (after.startsWith("*")) {
        segments.push({ type: "descend", name: undefined });
        i += 3;
        continue;
      }
      const bracket = /^\[(?:'([^']*)'|"([^"]*)")\]/.exec(after);
      const m = bracket ?? NAME_RE.exec(after);
      if (!m) return `path "${path}": expected a name after ".." at ${i + 2}`;
      segments.push({ type: "descend", name: bracket ? (bracket[1] ?? bracket[2])! : m[0] });
      i += 2 + m[0].length;
      continue;
    }
    if (rest.startsWith(".")) {
      if (rest[1] === "*") {
        segments.push({ type: "wildcard" });
        i += 2;
        continue;
      }
      const m = NAME_RE.exec(rest.slice(1));
      if (!m) return `path "${path}": expected a name after "." at ${i + 1}`;
      segments.push({ type: "child", name: m[0] });
      i += 1 + m[0].length;
      continue;
    }
    const bracket = /^\[(?:'([^']*)'|"([^"]*)"|(\d{1,9})|(\*))\]/.exec(rest);
    if (!bracket) return `path "${path}": unexpected "${rest[0]}" at ${i}`;
    if (bracket[4]) segments.push({ type: "wildcard" });
    else if (bracket[3] !== undefined) segments.push({ type: "index", index: Number(bracket[3]) });
    else segments.push({ type: "child", name: (bracket[1] ?? bracket[2])! });
    i += bracket[0].length;
  }
  if (segments.length === 0) return `path "${path}" selects the whole payload; name a field`;
  return segments;
}

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === "object" && v !== null;
}

function hasOwn(o: Container, key: string | number): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

/** Replaces every value `segments` selects in `root` (mutated) with `mask`; returns how many were replaced. */
export function redactPath(root: unknown, segments: PathSegment[], mask: unknown = REDACTED): number {
  let count = 0;
  const step = (node: unknown, i: number, depth: number): void => {
    if (!isContainer(node) || depth > MAX_DEPTH) return;
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    const at = (key: string | number): void => {
      const c = node as Record<string | number, unknown>;
      if (last) {
        c[key] = mask;
        count++;
      } else step(c[key], i + 1, depth + 1);
    };
    switch (seg.type) {
      case "child":
        if (!Array.isArray(node) && hasOwn(node, seg.name)) at(seg.name);
        break;
      case "index":
        if (Array.isArray(node) && seg.index < node.length) at(seg.index);
        break;
      case "wildcard":
        for (const key of Array.isArray(node) ? node.keys() : Object.keys(node)) at(key);
        break;
      case "descend": {
        const visit = (n: unknown, d: number): void => {
          if (!isContainer(n) || d > MAX_DEPTH) return;
          const keys = Array.isArray(n) ? [...n.keys()] : Object.keys(n);
          for (const key of keys) {
            const c = n as Record<string | number, unknown>;
            const matches = seg.name === undefined || (!Array.isArray(n) && key === seg.name);
            if (matches) {
              if (last) {
                c[key] = mask;
                count++;
                continue;
              }
              step(c[key], i + 1, d + 1);
            }
            visit(c[key], d + 1);
          }
        };
        visit(node, depth);
        break;
      }
    }
  };
  step(root, 0, 0);
  return count;
}

/** Applies `fn` to every string in `root` (object keys excluded), replacing it in place; returns the new root. */
export function mapStrings(root: unknown, fn: (s: string, key: string | number | undefined) => string, depth = 0, key?: string | number): unknown {
  if (typeof root === "string") return fn(root, key);
  if (!isContainer(root) || depth > MAX_DEPTH) return root;
  const c = root as Record<string | number, unknown>;
  for (const k of Array.isArray(root) ? [...root.keys()] : Object.keys(root)) c[k] = mapStrings(c[k], fn, depth + 1, k);
  return root;
}
