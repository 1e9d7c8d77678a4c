import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { ClusterControl } from "./control.js";

/** Control-plane topics of the node registry and the scatter-gather requests. */
export const CLUSTER_TOPICS = {
  /** A node's periodic announcement (its id, version, start time); a closing node's goodbye. */
  heartbeat: "cluster.heartbeat",
  /** A scatter-gather request every node answers (rooms of a tenant, node or tenant facts). */
  request: "cluster.request",
  /** A node's answer to a request, matched by its request id. */
  reply: "cluster.reply",
} as const;

/** How often a node announces itself. */
export const HEARTBEAT_MS = 2_000;
/** Heartbeats a node may miss before the others forget it. */
export const MISSED_HEARTBEATS = 3;
/** How long `gather` waits for the other nodes' answers. */
export const GATHER_TIMEOUT_MS = 500;
/** Requests of other nodes answered at once; more are refused until some finish (a flood cannot pile up work). */
const MAX_CONCURRENT_ANSWERS = 64;

/** What a node says about itself in each heartbeat. */
export interface NodeBeat {
  /** The node's server version. */
  version: string;
  /** When the node started (ms since the Unix epoch, its own clock). */
  startedAt: number;
}

/** A node another node heard from. */
export interface KnownNode extends NodeBeat {
  /** The node's id. */
  id: string;
  /** When its last heartbeat arrived (ms since the Unix epoch, this node's clock). */
  lastHeartbeat: number;
}

/** What `gather` collected: this node's answer first, then the other nodes' in the order they arrived. */
export interface Gathered<T> {
  answers: Array<{
    /** The answering node. */
    node: string;
    /** Its answer. */
    body: T;
  }>;
  /** Known nodes that did not answer within the timeout (or answered with an error). */
  missing: string[];
}

export interface ClusterInfoOptions {
  control: ClusterControl;
  logger: Logger;
  /** This node's heartbeat facts. */
  beat: NodeBeat;
  /** @default HEARTBEAT_MS */
  heartbeatMs?: number;
  /** @default MISSED_HEARTBEATS */
  missedHeartbeats?: number;
  /** @default GATHER_TIMEOUT_MS */
  timeoutMs?: number;
}

type Answerer = (args: unknown) => unknown;

interface Pending {
  expected: Set<string>;
  answers: Array<{ node: string; body: unknown }>;
  failed: Set<string>;
  done: () => void;
}

/**
 * The node registry and request/reply over the signed control plane (which only broadcasts). Every node heartbeats
 * every `heartbeatMs`; a node not heard from for `missedHeartbeats` beats is forgotten, and one that closes says so at
 * once. `gather(kind, args)` broadcasts a request with a random id; every node that registered `kind` answers on the
 * reply topic (every node sees every reply and keeps only those of its own requests); the answers are collected
 * until every node known when the request left has answered, or `timeoutMs` passed. On a single node (no control
 * plane) only this node's own answer is collected, with no wait.
 */
export class ClusterInfo {
  private readonly nodes = new Map<string, KnownNode>();
  private readonly answerers = new Map<string, Answerer>();
  private readonly pending = new Map<string, Pending>();
  private readonly off: Array<() => void> = [];
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private readonly expireMs: number;
  private readonly timeoutMs: number;
  private answering = 0;
  private closed = false;

  constructor(private readonly o: ClusterInfoOptions) {
    const heartbeatMs = o.heartbeatMs ?? HEARTBEAT_MS;
    this.expireMs = heartbeatMs * (o.missedHeartbeats ?? MISSED_HEARTBEATS);
    this.timeoutMs = o.timeoutMs ?? GATHER_TIMEOUT_MS;
    const { control } = o;
    if (!control.clustered) return;
    this.off.push(
      control.on(CLUSTER_TOPICS.heartbeat, (body, { from }) => this.onBeat(body, from)),
      control.on(CLUSTER_TOPICS.request, (body, { from }) => this.onRequest(body, from)),
      control.on(CLUSTER_TOPICS.reply, (body, { from }) => this.onReply(body, from)),
    );
    this.timer = setInterval(() => this.beat(false), heartbeatMs);
    this.timer.unref();
    // The first beat asks the others to answer with theirs, so a new node knows the cluster within milliseconds.
    this.beat(true);
  }

  /** This node's id. */
  get nodeId(): string {
    return this.o.control.nodeId;
  }

  /** The other nodes heard from within the expiry, sorted by id. */
  known(): KnownNode[] {
    this.expire();
    return [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Registers how this node answers requests of `kind` (the answer must be JSON). Throwing refuses the request. */
  answer(kind: string, answerer: Answerer): void {
    this.answerers.set(kind, answerer);
  }

  /** Asks every node (this one included) a question of `kind`; see the class comment. */
  async gather<T>(kind: string, args: unknown): Promise<Gathered<T>> {
    const answerer = this.answerers.get(kind);
    if (!answerer) throw new Error(`no answerer of "${kind}"`);
    const local = Promise.resolve(answerer(args));
    const expected = new Set(this.known().map((n) => n.id));
    if (expected.size === 0 || this.closed) return { answers: [{ node: this.nodeId, body: (await local) as T }], missing: [] };
    const id = randomBytes(12).toString("base64url");
    const pending: Pending = { expected, answers: [], failed: new Set(), done: () => undefined };
    const finished = new Promise<void>((resolve) => {
      const timeout = setTimeout(resolve, this.timeoutMs);
      pending.done = () => {
        clearTimeout(timeout);
        resolve();
      };
    });
    this.pending.set(id, pending);
    try {
      try {
        await this.o.control.send(CLUSTER_TOPICS.request, { id, kind, args });
      } catch (err) {
        // The control plane is away (NATS reconnecting): this node's answer alone, every other node missing.
        this.o.logger.warn({ err, kind }, "cluster request not sent");
        return { answers: [{ node: this.nodeId, body: (await local) as T }], missing: [...expected].sort() };
      }
      const mine = (await local) as T;
      await finished;
      const answered = new Set(pending.answers.map((a) => a.node));
      const missing = [...expected].filter((n) => !answered.has(n)).sort();
      return { answers: [{ node: this.nodeId, body: mine }, ...(pending.answers as Array<{ node: string; body: T }>)], missing };
    } finally {
      this.pending.delete(id);
    }
  }

  private beat(hello: boolean): void {
    if (this.closed) return;
    this.expire();
    this.o.control.send(CLUSTER_TOPICS.heartbeat, { ...this.o.beat, hello }).catch((err: unknown) => this.o.logger.warn({ err }, "heartbeat not sent"));
  }

  private expire(): void {
    const cutoff = Date.now() - this.expireMs;
    for (const [id, node] of this.nodes) if (node.lastHeartbeat < cutoff) this.nodes.delete(id);
  }

  private onBeat(body: unknown, from: string): void {
    const b = body as Partial<NodeBeat & { hello: boolean; bye: boolean }> | null;
    if (typeof b !== "object" || b === null) return;
    if (b.bye === true) {
      this.nodes.delete(from);
      return;
    }
    if (typeof b.version !== "string" || typeof b.startedAt !== "number") return;
    const fresh = !this.nodes.has(from);
    this.nodes.set(from, { id: from, version: b.version, startedAt: b.startedAt, lastHeartbeat: Date.now() });
    // A node that just started asked for the others' beats; answer once rather than make it wait a whole interval.
    if (b.hello === true && fresh) this.beat(false);
  }

  private onRequest(body: unknown, from: string): void {
    const r = body as { id?: unknown; kind?: unknown; args?: unknown } | null;
    if (typeof r !== "object" || r === null || typeof r.id !== "string" || typeof r.kind !== "string") return;
    const id = r.id;
    const answerer = this.answerers.get(r.kind);
    const reply = (payload: Record<string, unknown>): Promise<void> =>
      this.o.control.send(CLUSTER_TOPICS.reply, { id, to: from, ...payload }).catch((err: unknown) => this.o.logger.warn({ err }, "cluster reply not sent"));
    if (!answerer || this.answering >= MAX_CONCURRENT_ANSWERS) {
      void reply({ error: answerer ? "busy" : "unknown request" });
      return;
    }
    this.answering++;
    void (async () => {
      try {
        await reply({ body: await answerer(r.args) });
      } catch (err) {
        this.o.logger.warn({ err, kind: r.kind }, "cluster request refused");
        await reply({ error: err instanceof Error ? err.message : "failed" });
      } finally {
        this.answering--;
      }
    })();
  }

  private onReply(body: unknown, from: string): void {
    const r = body as { id?: unknown; to?: unknown; body?: unknown; error?: unknown } | null;
    if (typeof r !== "object" || r === null || r.to !== this.nodeId || typeof r.id !== "string") return;
    const pending = this.pending.get(r.id);
    if (!pending) return;
    if (pending.answers.some((a) => a.node === from) || pending.failed.has(from)) return;
    if (r.error !== undefined) pending.failed.add(from);
    else pending.answers.push({ node: from, body: r.body });
    const heard = pending.answers.length + pending.failed.size;
    if (heard >= pending.expected.size && [...pending.expected].every((n) => pending.failed.has(n) || pending.answers.some((a) => a.node === n))) {
      pending.done();
    }
  }

  /** Stops heartbeating and tells the other nodes this one is gone. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const off of this.off) off();
    for (const p of this.pending.values()) p.done();
    if (this.o.control.clustered) {
      await this.o.control.send(CLUSTER_TOPICS.heartbeat, { bye: true }).catch((err: unknown) => this.o.logger.warn({ err }, "goodbye not sent"));
    }
  }
}
