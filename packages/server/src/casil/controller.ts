import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import {
  ArqonError,
  ErrorCode,
  CasilTelemetry,
  createCasilEngine,
  parseCasilPolicy,
  validateCasilDocument,
  type CasilAuditRecord,
  type CasilEngine,
  type CasilInspectOptions,
  type CasilPolicyDocument,
  type CasilShadowDifference,
  type CasilStatsSnapshot,
  type Decision,
  type InspectionInput,
  type Inspector,
} from "@arqon/core";
import { WasmPolicyHost, type WasmBreakerStatus, type WasmPolicyHostOptions } from "./wasm-host.js";

/** The logging surface the controller uses (pino's Logger fits). */
export interface CasilLogger {
  /** Logs an informational line (a policy file reloaded). */
  info(obj: object, msg?: string): void;
  /** Logs a warning (a bad policy file, a Wasm breaker, audit records by default). */
  warn(obj: object, msg?: string): void;
  /** Logs an error (a reload listener that threw). */
  error(obj: object, msg?: string): void;
}

/**
 * What made a policy active: "initial" (`create`), "local" (`reload` by default), "file" (`watchFile`), "command"
 * (the server API's baseline reload) or "remote" (`applyRemote`, another node's reload).
 */
export type CasilReloadSource = "initial" | "local" | "file" | "command" | "remote";

/** What `onReload` listeners get after a policy was swapped in. */
export interface CasilReloadEvent {
  /** The version now active. */
  version: number;
  /** The version it replaced. */
  previousVersion: number;
  /** The document as given (before the env layer is applied). */
  document: CasilPolicyDocument;
  /** What made it active. */
  source: CasilReloadSource;
}

/** Options of `CasilController.create`. */
export interface CasilControllerOptions {
  /** The initial policy document (object, or JSON/YAML text). @default {} */
  policy?: CasilPolicyDocument | string;
  /** The env layer under every document (pass process.env). @default {} */
  env?: Record<string, string | undefined>;
  /** Where relative `wasm[].module` paths resolve (a watched file's directory when watching). @default process.cwd() */
  baseDir?: string;
  /** Options of the Wasm worker pool built for documents that name Wasm policies. */
  wasm?: WasmPolicyHostOptions;
  /** One record per block and per redaction. @default logged at warn when a logger is given */
  audit?: (record: CasilAuditRecord) => void;
  /** Called for every inspection where the policy's `shadow` section decides otherwise than the live policy. */
  onShadowDifference?: (difference: CasilShadowDifference) => void;
  /** Where file reloads, bad policy files, Wasm breaker changes and (by default) audit records are logged. */
  logger?: CasilLogger;
  /** Quiet period after a watched file changes before it is reloaded. @default 100 */
  debounceMs?: number;
}

interface Active {
  engine: CasilEngine;
  document: CasilPolicyDocument;
  host?: WasmPolicyHost;
  source: CasilReloadSource;
  loadedAt: string;
}

/** Every Wasm rule a document names (global, tenants, shadow). */
function wasmRules(doc: CasilPolicyDocument): Array<{ name: string; module?: string; where: string }> {
  const out: Array<{ name: string; module?: string; where: string }> = [];
  const add = (rules: CasilPolicyDocument["wasm"], where: string): void => {
    for (const [i, r] of (rules ?? []).entries()) out.push({ name: r.name, module: r.module, where: `${where}.wasm[${i}]` });
  };
  add(doc.wasm, "policy");
  for (const [t, spec] of Object.entries(doc.tenants ?? {})) add(spec.wasm, `policy.tenants.${t}`);
  add(doc.shadow?.wasm, "policy.shadow");
  for (const [t, spec] of Object.entries(doc.shadow?.tenants ?? {})) add(spec.wasm, `policy.shadow.tenants.${t}`);
  return out;
}

/**
 * Holds the active CASIL engine and swaps it atomically on reload. It is itself the gateway's Inspector: each
 * `inspect` goes to the engine active at that moment, so a reload takes effect on the next inspection. A reload is
 * validated completely (document shape, regexes, paths, schemas, Wasm modules loaded into a fresh worker pool) before
 * the swap; an invalid one throws ArqonError VALIDATION_ERROR and the old policy stays. Versions only grow: 1 for the
 * initial policy, +1 per local reload; `applyRemote` adopts a peer's version when it is newer.
 */
export class CasilController implements Inspector {
  private active!: Active;
  private readonly telemetry = new CasilTelemetry();
  private readonly listeners = new Set<(event: CasilReloadEvent) => void>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Set<{ close(): void }>();
  private closed = false;

  private constructor(private readonly options: CasilControllerOptions) {}

  /** Builds the controller with its initial policy (version 1). Throws VALIDATION_ERROR when the policy is invalid. */
  static async create(options: CasilControllerOptions = {}): Promise<CasilController> {
    const controller = new CasilController(options);
    controller.active = await controller.build(options.policy ?? {}, 1, "initial", options.baseDir);
    return controller;
  }

  /** The version of the active policy (1 for the initial one). */
  get version(): number {
    return this.active.engine.version;
  }

  /** The engine of the active policy (replaced by every reload). */
  get engine(): CasilEngine {
    return this.active.engine;
  }

  /** Inspects with the engine active now; `options.enforce` evaluates it as if its mode were enforce (see CasilInspectOptions). */
  inspect(input: InspectionInput, options?: CasilInspectOptions): Decision | Promise<Decision> {
    return this.active.engine.inspect(input, options);
  }

  /** Counters across every version since start (decisions by tenant, mode, decision, reason; shadow; wasm). */
  stats(): CasilStatsSnapshot {
    return this.telemetry.snapshot();
  }

  /** What `op.casil.get` answers. */
  describe(): Record<string, unknown> {
    const { engine, document, source, loadedAt, host } = this.active;
    const global = engine.settingsFor("\u0000global");
    return {
      version: engine.version,
      enabled: engine.enabled,
      mode: global.mode,
      source,
      loadedAt,
      document,
      effective: global,
      wasm: host?.names ?? [],
      wasmBreakers: host?.breakers() ?? [],
    };
  }

  /** The active policy's Wasm breakers that are open or have failures (for metrics). */
  wasmBreakers(): WasmBreakerStatus[] {
    return this.active.host?.breakers() ?? [];
  }

  /** Validates and swaps in a new policy; resolves with the new version. Reloads run one at a time, in call order. */
  reload(
    policy: CasilPolicyDocument | string,
    source: CasilReloadSource = "local",
    baseDir?: string,
  ): Promise<{
    /** The version now active. */
    version: number;
    /** The version it replaced. */
    previousVersion: number;
  }> {
    return this.serial(async () => {
      const previousVersion = this.version;
      const next = await this.build(policy, previousVersion + 1, source, baseDir ?? this.options.baseDir);
      this.swap(next, previousVersion);
      return { version: next.engine.version, previousVersion };
    });
  }

  /**
   * Validates a policy completely, as `reload` would (Wasm modules loaded into a throwaway pool), and changes
   * nothing: a dry run. Resolves with the version a reload would give it; throws VALIDATION_ERROR like `reload`.
   */
  check(
    policy: CasilPolicyDocument | string,
    baseDir?: string,
  ): Promise<{
    /** The version a reload would give it. */
    version: number;
    /** The version active now. */
    previousVersion: number;
  }> {
    return this.serial(async () => {
      const built = await this.build(policy, this.version + 1, "command", baseDir ?? this.options.baseDir);
      await built.host?.close();
      return { version: this.version + 1, previousVersion: this.version };
    });
  }

  /** The active policy document (as given, before the env layer). */
  get document(): CasilPolicyDocument {
    return this.active.document;
  }

  /**
   * Adopts a policy reloaded on another node (the cluster control plane calls this). Applied only when `version` is
   * newer than the active one; resolves true when applied. Listeners see it with source "remote" (do not re-broadcast).
   */
  applyRemote(policy: CasilPolicyDocument | string, version: number): Promise<boolean> {
    return this.serial(async () => {
      if (!Number.isInteger(version) || version <= this.version) return false;
      const previousVersion = this.version;
      this.swap(await this.build(policy, version, "remote", this.options.baseDir), previousVersion);
      return true;
    });
  }

  /** Called after every successful swap (local, file, command and remote). Returns an unsubscribe function. */
  onReload(listener: (event: CasilReloadEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Loads `file` now (throws VALIDATION_ERROR when it is invalid) and reloads it whenever it changes (debounced;
   * the directory is watched so editors that replace the file are seen). A bad edit is logged and the old policy stays.
   * Resolves with a function that stops watching. Pass `loadedText` when the controller was created from this file's
   * text: the file is then reloaded now only if it changed since.
   */
  async watchFile(file: string, options: { loadedText?: string } = {}): Promise<() => void> {
    const absolute = path.resolve(file);
    const dir = path.dirname(absolute);
    const base = path.basename(absolute);
    let lastText = await readFile(absolute, "utf8");
    if (lastText !== options.loadedText) await this.reload(lastText, "file", dir);
    let timer: NodeJS.Timeout | undefined;
    const check = async (): Promise<void> => {
      let text: string;
      try {
        text = await readFile(absolute, "utf8");
      } catch (err) {
        this.options.logger?.warn({ err, file: absolute }, "casil policy file unreadable; keeping the active policy");
        return;
      }
      if (text === lastText) return;
      lastText = text;
      try {
        const { version } = await this.reload(text, "file", dir);
        this.options.logger?.info({ file: absolute, version }, "casil policy reloaded from file");
      } catch (err) {
        this.options.logger?.warn({ err, file: absolute, version: this.version }, "casil policy file invalid; keeping the active policy");
      }
    };
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name !== null && name !== base) return;
        clearTimeout(timer);
        timer = setTimeout(() => void check(), this.options.debounceMs ?? 100);
      });
    } catch (err) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `cannot watch ${absolute}: ${(err as Error).message}`, { cause: err });
    }
    watcher.on("error", (err) => this.options.logger?.warn({ err, file: absolute }, "casil policy watcher failed"));
    const handle = {
      close: (): void => {
        clearTimeout(timer);
        watcher.close();
        this.watchers.delete(handle);
      },
    };
    this.watchers.add(handle);
    return handle.close;
  }

  /** Stops watchers and the Wasm worker pool. Inspections after close use the last policy without Wasm (fail closed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watchers]) w.close();
    await this.chain.catch(() => undefined);
    await this.active.host?.close();
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task, task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private swap(next: Active, previousVersion: number): void {
    const old = this.active;
    this.active = next;
    if (old.host && old.host !== next.host) {
      // Calls already dispatched to the old pool finish within their budget; close it after that.
      const host = old.host;
      setTimeout(() => void host.close(), host.budgetMs * 4 + 50).unref();
    }
    const event: CasilReloadEvent = { version: next.engine.version, previousVersion, document: next.document, source: next.source };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.options.logger?.error({ err }, "casil reload listener failed");
      }
    }
  }

  private async build(policy: CasilPolicyDocument | string, version: number, source: CasilReloadSource, baseDir: string | undefined): Promise<Active> {
    if (this.closed) throw new ArqonError(ErrorCode.VALIDATION_ERROR, "CASIL controller is closed");
    const document = typeof policy === "string" ? parseCasilPolicy(policy) : validateCasilDocument(structuredClone(policy));
    const rules = wasmRules(document);
    let host: WasmPolicyHost | undefined;
    if (rules.length > 0) {
      host = new WasmPolicyHost({
        ...this.options.wasm,
        onBreaker: (e) => {
          this.options.logger?.warn({ version, casilWasmBreaker: e }, e.state === "open" ? "casil Wasm policy disabled after repeated timeouts" : "casil Wasm policy enabled again");
          this.options.wasm?.onBreaker?.(e);
        },
      });
      try {
        const loaded = new Map<string, string>();
        for (const rule of rules) {
          if (!rule.module) {
            if (loaded.has(rule.name)) continue;
            throw new ArqonError(ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: ${rule.where}: "module" (a .wasm file) is required`);
          }
          const file = path.resolve(baseDir ?? process.cwd(), rule.module);
          if (loaded.has(rule.name)) {
            if (loaded.get(rule.name) !== file) throw new ArqonError(ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: ${rule.where}: Wasm policy "${rule.name}" names two different modules`);
            continue;
          }
          let bytes: Uint8Array;
          try {
            bytes = new Uint8Array(await readFile(file));
          } catch (err) {
            throw new ArqonError(ErrorCode.VALIDATION_ERROR, `invalid CASIL policy: ${rule.where}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
          await host.load(rule.name, bytes);
          loaded.set(rule.name, file);
        }
      } catch (err) {
        await host.close();
        throw err;
      }
    }
    const logger = this.options.logger;
    const audit = this.options.audit ?? (logger ? (record: CasilAuditRecord) => logger.warn({ casil: record }, record.event) : undefined);
    try {
      const engine = createCasilEngine({
        policy: document,
        env: this.options.env,
        version,
        wasm: host,
        audit,
        onShadowDifference: this.options.onShadowDifference,
        telemetry: this.telemetry,
      });
      return { engine, document, host, source, loadedAt: new Date().toISOString() };
    } catch (err) {
      await host?.close();
      throw err;
    }
  }
}
