import { ArqonError, ErrorCode, jsonBytes, parseJsonBytes } from "@arqon/core";
import { argsObject, int, str } from "./args.js";
import type { Operator, OperatorHost } from "./host.js";

/** Options of {@link storeOperator} (op.store). */
export interface StoreOperatorOptions {
  /** Largest value accepted, in bytes of JSON. @default 65536 */
  maxValueBytes?: number;
}

/**
 * Keys: 1-256 characters of letters, digits and `_ . : / @ = + -`, used as segments separated by `/` (no empty
 * segment, no `.` or `..` segment: keys read like paths to people and tools, so none may look like a traversal).
 */
const KEY_RE = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))(?!\/)(?!.*\/\/)(?!.*\/$)[A-Za-z0-9_.:/@=+-]{1,256}$/;
/** Namespaces: a name (letters, digits, `_ . : -`), never `.` or `..`. */
const NAMESPACE_RE = /^(?!\.{1,2}$)[A-Za-z0-9_.:-]{1,64}$/;

/** The store namespace a command names (its `namespace` argument, "default" when absent): what the `store` capability covers. */
function namespaceOf(args: Record<string, unknown>): unknown {
  return args.namespace === undefined ? "default" : args.namespace;
}

/**
 * op.store: simple key/value storage for agents, scoped by tenant and an optional namespace, on the host's
 * KeyValueStore (durable on the embedded database and on NATS KV). Verbs: get, put (compare-and-set with
 * `ifRevision`), delete, list. Every verb needs the `store` capability for the namespace (admins, and tokens without
 * a `caps` claim, have it). Writes are charged to the tenant's usage (keys and bytes) within its limits.
 */
export function storeOperator(host: OperatorHost, options: StoreOperatorOptions = {}): Operator {
  const maxValueBytes = options.maxValueBytes ?? 65536;
  const access = { capability: "store", resource: namespaceOf } as const;
  const ns = (tenant: string, args: Record<string, unknown>) =>
    `op.store/${tenant}/${args.namespace === undefined ? "default" : str(args, "namespace", { max: 64, pattern: NAMESPACE_RE })}`;
  const off = [
    host.registerCommand(
      "op.store.get",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const key = str(args, "key", { pattern: KEY_RE });
        const entry = await host.kv.get(ns(ctx.tenant, args), key);
        if (!entry) throw new ArqonError(ErrorCode.NOT_FOUND, `no value at "${key}"`);
        return { key, value: parseJsonBytes(entry.value), revision: entry.revision, updatedAt: entry.updatedAt };
      },
      { access, description: "read a value: {key, namespace?}" },
    ),
    host.registerCommand(
      "op.store.put",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const key = str(args, "key", { pattern: KEY_RE });
        if (!("value" in args)) throw new ArqonError(ErrorCode.VALIDATION_ERROR, '"value" is required');
        const bytes = jsonBytes(args.value);
        if (bytes.length > maxValueBytes) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `value is larger than ${maxValueBytes} bytes`);
        const ifRevision = args.ifRevision === undefined ? undefined : int(args, "ifRevision", { min: 0 });
        const namespace = ns(ctx.tenant, args);
        // Charged before the write (refused past the limit), refunded when the write does not happen.
        const old = ctx.chargeUsage ? await host.kv.get(namespace, key) : undefined;
        const delta = { storeKeys: old ? 0 : 1, storeBytes: bytes.length - (old?.value.length ?? 0) };
        await ctx.chargeUsage?.(delta);
        let revision: number;
        try {
          revision = await host.kv.put(namespace, key, bytes, ifRevision === undefined ? undefined : { ifRevision });
        } catch (err) {
          await ctx.chargeUsage?.({ storeKeys: -delta.storeKeys, storeBytes: -delta.storeBytes });
          throw err;
        }
        return { key, revision };
      },
      { access, description: "write a value: {key, value, ifRevision?, namespace?}" },
    ),
    host.registerCommand(
      "op.store.delete",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const key = str(args, "key", { pattern: KEY_RE });
        const namespace = ns(ctx.tenant, args);
        const old = ctx.chargeUsage ? await host.kv.get(namespace, key) : undefined;
        const deleted = await host.kv.delete(namespace, key);
        if (deleted && old) await ctx.chargeUsage?.({ storeKeys: -1, storeBytes: -old.value.length });
        return { key, deleted };
      },
      { access, description: "delete a value: {key, namespace?}" },
    ),
    host.registerCommand(
      "op.store.list",
      async (ctx) => {
        const args = argsObject(ctx.args);
        const prefix = args.prefix === undefined ? undefined : str(args, "prefix");
        const limit = int(args, "limit", { min: 1, max: 1000, fallback: 100 });
        const entries = await host.kv.list(ns(ctx.tenant, args), { prefix, limit });
        return { entries: entries.map((e) => ({ key: e.key, value: parseJsonBytes(e.value), revision: e.revision })) };
      },
      { access, description: "list values in key order: {prefix?, limit?, namespace?}" },
    ),
  ];
  return {
    async close() {
      for (const f of off) f();
    },
  };
}
