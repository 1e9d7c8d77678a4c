/**
 * The JSON-path subset CASIL redaction understands: `$` followed by `.name`, `['name']` / `["name"]`, `[n]`, `.*` /
 * `[*]` (every child) and `..name` / `..*` / `..['name']` (descendants), at most MAX_PATH_SEGMENTS segments. Filters,
 * slices and unions are not supported. Selection has set semantics: a node selected along several routes counts once.
 */

/** One step of a parsed JSON path, as `parseJsonPath` returns it. */
export type PathSegment =
  | {
      /** `.name` / `['name']`: the named member of an object. */
      type: "child";
      /** The member name. */
      name: string;
    }
  | {
      /** `[n]`: the n-th element of an array. */
      type: "index";
      /** The zero-based array index. */
      index: number;
    }
  | {
      /** `.*` / `[*]`: every member of an object or element of an array. */
      type: "wildcard";
    }
  | {
      /** `..name` / `..['name']` / `..*`: a descendant at any depth. */
      type: "descend";
      /** The member name to find at any depth; undefined for `..*` (every descendant). */
      name: string | undefined;
    };

/** The value that replaces redacted JSON values (and the matches of redaction patterns). */
export const REDACTED = "[REDACTED]";
const MAX_DEPTH = 128;
/** Most segments one redaction path may have. */
export const MAX_PATH_SEGMENTS = 32;
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
  if (segments.length > MAX_PATH_SEGMENTS) return `path "${path}" has more than ${MAX_PATH_SEGMENTS} segments`;
  return segments;
}

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === "object" && v !== null;
}

function hasOwn(o: Container, key: string | number): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

interface Node {
  node: Container;
  depth: number;
}

/** The containers a non-final segment selects from `frontier`, each once. */
function stepNodes(frontier: Node[], seg: PathSegment): Node[] {
  const next: Node[] = [];
  const seen = new Set<Container>();
  const add = (value: unknown, depth: number): void => {
    if (isContainer(value) && depth <= MAX_DEPTH && !seen.has(value)) {
      seen.add(value);
      next.push({ node: value, depth });
    }
  };
  if (seg.type !== "descend") {
    for (const { node, depth } of frontier) {
      const c = node as Record<string | number, unknown>;
      if (seg.type === "child") {
        if (!Array.isArray(node) && hasOwn(node, seg.name)) add(c[seg.name], depth + 1);
      } else if (seg.type === "index") {
        if (Array.isArray(node) && seg.index < node.length) add(c[seg.index], depth + 1);
      } else for (const key of Array.isArray(node) ? node.keys() : Object.keys(node)) add(c[key], depth + 1);
    }
    return next;
  }
  // Descendant segment: every container under the frontier is visited once, however many frontier nodes it is under.
  forEachDescendant(frontier, seg.name, (node, key, depth) => {
    add((node as Record<string | number, unknown>)[key], depth + 1);
    return true;
  });
  return next;
}

/**
 * Walks every container under `frontier` once (nesting deeper than MAX_DEPTH is not followed) and calls `match` for
 * each entry a descendant segment named `name` selects (every entry when `name` is undefined); when `match` returns
 * false that entry is not searched further.
 */
function forEachDescendant(frontier: Node[], name: string | undefined, match: (node: Container, key: string | number, depth: number) => boolean): void {
  const visited = new Set<Container>();
  const stack: Node[] = [];
  for (const start of frontier) {
    stack.push(start);
    while (stack.length > 0) {
      const { node, depth } = stack.pop()!;
      if (visited.has(node)) continue;
      visited.add(node);
      const c = node as Record<string | number, unknown>;
      for (const key of Array.isArray(node) ? [...node.keys()] : Object.keys(node)) {
        if ((name === undefined || (!Array.isArray(node) && key === name)) && !match(node, key, depth)) continue;
        const child = c[key];
        if (isContainer(child) && depth + 1 <= MAX_DEPTH) stack.push({ node: child, depth: depth + 1 });
      }
    }
  }
}

/**
 * Replaces every value `segments` selects in `root` (mutated) with `mask`; returns how many were replaced. Each
 * segment is applied to the set of nodes the previous ones selected (each node once), so the cost is
 * O(segments × nodes) whatever the path: a descendant segment visits every node under its frontier once. A value
 * that is masked is not searched further. Nesting deeper than 128 is not followed.
 */
export function redactPath(root: unknown, segments: PathSegment[], mask: unknown = REDACTED): number {
  if (!isContainer(root) || segments.length === 0) return 0;
  let frontier: Node[] = [{ node: root, depth: 0 }];
  for (let i = 0; i < segments.length - 1 && frontier.length > 0; i++) frontier = stepNodes(frontier, segments[i]!);
  const seg = segments[segments.length - 1]!;
  let count = 0;
  const put = (c: Container, key: string | number): void => {
    (c as Record<string | number, unknown>)[key] = mask;
    count++;
  };
  if (seg.type !== "descend") {
    for (const { node } of frontier) {
      if (seg.type === "child") {
        if (!Array.isArray(node) && hasOwn(node, seg.name)) put(node, seg.name);
      } else if (seg.type === "index") {
        if (Array.isArray(node) && seg.index < node.length) put(node, seg.index);
      } else for (const key of Array.isArray(node) ? [...node.keys()] : Object.keys(node)) put(node, key);
    }
    return count;
  }
  // A masked value is not searched further.
  forEachDescendant(frontier, seg.name, (node, key) => {
    put(node, key);
    return false;
  });
  return count;
}

/**
 * Applies `fn` to every string in `root` (object keys excluded), replacing it in place; returns the new root. `field`
 * is the name of the object field holding the string — for strings inside arrays, the field holding the array
 * (`{"password": ["x"]}` gives "password"), undefined at the top level.
 */
export function mapStrings(root: unknown, fn: (s: string, field: string | undefined) => string, depth = 0, field?: string): unknown {
  if (typeof root === "string") return fn(root, field);
  if (!isContainer(root) || depth > MAX_DEPTH) return root;
  if (Array.isArray(root)) {
    for (let i = 0; i < root.length; i++) root[i] = mapStrings(root[i], fn, depth + 1, field);
    return root;
  }
  const c = root as Record<string, unknown>;
  for (const k of Object.keys(root)) c[k] = mapStrings(c[k], fn, depth + 1, k);
  return root;
}
