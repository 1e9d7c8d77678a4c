/**
 * Load-time check that a room's JSON Schema validates any payload in time linear in the payload's size. ajv applies
 * every (ref-expanded) subschema to each data node at most once, so validation costs O(expanded schema × data) —
 * except for recursive schemas (a `$ref` cycle can apply several branches per nesting level: exponential in the
 * payload's depth) and `uniqueItems` (quadratic in the array's length unless its items have a scalar type). The rules
 * (documented in docs/casil.md, "Schema safety"):
 *
 * - `$ref` only to the schema itself (`#`) or a JSON pointer into it (`#/definitions/x`), and no reference cycle;
 *   no `$id` below the root, no `$anchor`, `$dynamicRef`, `$recursiveRef`;
 * - the schema, with every reference expanded, has at most {@link MAX_SCHEMA_NODES} subschemas (each `enum` value
 *   counts as one);
 * - `uniqueItems: true` needs `maxItems` of at most {@link MAX_UNIQUE_ITEMS} or `items` with a scalar `type`.
 *
 * Regex keywords (`pattern`, `patternProperties`) run on the linear-time engine (see regex-safety.ts).
 */

/** Most subschemas a schema may expand to, every `$ref` counted where it is used (each `enum` value counts as one). */
export const MAX_SCHEMA_NODES = 1000;
/** Largest `maxItems` `uniqueItems: true` is accepted with, unless `items` has a scalar `type`. */
export const MAX_UNIQUE_ITEMS = 256;

const SINGLE = ["additionalItems", "additionalProperties", "contains", "propertyNames", "if", "then", "else", "not", "unevaluatedItems", "unevaluatedProperties"];
const LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"];
const MAPS = ["properties", "patternProperties", "dependentSchemas"];
const DEFINITIONS = ["definitions", "$defs"];
const FORBIDDEN = ["$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor"];
const SCALAR_TYPES = new Set(["string", "number", "integer", "boolean", "null"]);

type SchemaObject = Record<string, unknown>;

function isObject(v: unknown): v is SchemaObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class SchemaRefusal extends Error {}

function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === "#") return root;
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node) && /^\d+$/.test(part)) node = node[Number(part)];
    else if (isObject(node) && Object.prototype.hasOwnProperty.call(node, part)) node = node[part];
    else throw new SchemaRefusal(`$ref "${ref}" does not resolve inside the schema`);
  }
  return node;
}

/** The subschemas a schema applies (definitions excluded: they apply only through $ref). */
function children(schema: SchemaObject): unknown[] {
  const out: unknown[] = [];
  for (const k of SINGLE) if (k in schema) out.push(schema[k]);
  for (const k of LISTS) if (Array.isArray(schema[k])) out.push(...(schema[k] as unknown[]));
  for (const k of MAPS) if (isObject(schema[k])) out.push(...Object.values(schema[k]));
  if (Array.isArray(schema.items)) out.push(...(schema.items as unknown[]));
  else if ("items" in schema) out.push(schema.items);
  if (isObject(schema.dependencies)) for (const v of Object.values(schema.dependencies)) if (!Array.isArray(v)) out.push(v);
  return out;
}

function checkLocal(schema: SchemaObject, isRoot: boolean): void {
  for (const k of FORBIDDEN) if (k in schema) throw new SchemaRefusal(`"${k}" is not supported`);
  if (!isRoot && "$id" in schema) throw new SchemaRefusal('"$id" is only allowed at the root');
  if ("$ref" in schema) {
    const ref = schema.$ref;
    if (typeof ref !== "string" || !(ref === "#" || ref.startsWith("#/"))) throw new SchemaRefusal(`$ref "${String(ref)}": only "#" and "#/..." references into the schema itself are supported`);
  }
  if (schema.uniqueItems === true) {
    const max = schema.maxItems;
    const items = schema.items;
    const types = isObject(items) ? (Array.isArray(items.type) ? items.type : [items.type]) : [];
    const scalar = types.length > 0 && types.every((t) => typeof t === "string" && SCALAR_TYPES.has(t));
    if (!(typeof max === "number" && max <= MAX_UNIQUE_ITEMS) && !scalar) {
      throw new SchemaRefusal(`uniqueItems needs "maxItems" of at most ${MAX_UNIQUE_ITEMS} or "items" with a scalar "type" (it compares every pair of items otherwise)`);
    }
  }
}

/** Returns why a room schema is refused, or undefined when its validation cost is linear in the payload. */
export function schemaProblem(schema: unknown): string | undefined {
  if (typeof schema === "boolean") return undefined;
  if (!isObject(schema)) return "a schema must be an object or a boolean";
  const sizes = new Map<SchemaObject, number>();
  const open = new Set<SchemaObject>();
  const checked = new Set<SchemaObject>();
  // Every subschema, definitions included, obeys the local rules.
  const all: unknown[] = [schema];
  while (all.length > 0) {
    const s = all.pop();
    if (!isObject(s) || checked.has(s)) continue;
    checked.add(s);
    try {
      checkLocal(s, s === schema);
    } catch (err) {
      return (err as Error).message;
    }
    all.push(...children(s));
    for (const k of DEFINITIONS) if (isObject(s[k])) all.push(...Object.values(s[k]));
  }
  // Expanded size from the root; a cycle is a recursive schema.
  const expanded = (s: unknown): number => {
    if (!isObject(s)) return 1;
    const known = sizes.get(s);
    if (known !== undefined) return known;
    if (open.has(s)) throw new SchemaRefusal("recursive schemas ($ref cycles) are not supported");
    open.add(s);
    let n = 1 + (Array.isArray(s.enum) ? s.enum.length : 0);
    for (const c of children(s)) {
      n += expanded(c);
      if (n > MAX_SCHEMA_NODES) break;
    }
    if (typeof s.$ref === "string" && n <= MAX_SCHEMA_NODES) n += expanded(resolvePointer(schema, s.$ref));
    open.delete(s);
    n = Math.min(n, MAX_SCHEMA_NODES + 1);
    sizes.set(s, n);
    return n;
  };
  try {
    if (expanded(schema) > MAX_SCHEMA_NODES) return `the schema expands to more than ${MAX_SCHEMA_NODES} subschemas (every $ref counted where it is used)`;
  } catch (err) {
    if (err instanceof SchemaRefusal) return err.message;
    throw err;
  }
  return undefined;
}
