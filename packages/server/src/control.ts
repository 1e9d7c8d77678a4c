import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { ArqonError, ErrorCode, utf8Decode, utf8Encode, type ControlPlane } from "@arqon/core";
import type { Logger } from "pino";

/** Shortest cluster key accepted (bytes of its UTF-8 text). */
export const MIN_CLUSTER_KEY_LENGTH = 32;
/** A control message older or newer than this (by its sender's clock) is refused. */
export const CONTROL_MAX_SKEW_MS = 30_000;

/**
 * The key control messages are signed with: the configured cluster key, else one derived from the JWT secret (every
 * node of a cluster verifies the same tokens, so it has that secret). Undefined when neither exists.
 */
export function clusterKeyOf(clusterKey: string | Uint8Array | undefined, jwtSecret: string | Uint8Array | undefined): Buffer | undefined {
  if (clusterKey !== undefined) {
    const bytes = typeof clusterKey === "string" ? Buffer.from(clusterKey, "utf8") : Buffer.from(clusterKey);
    if (bytes.length < MIN_CLUSTER_KEY_LENGTH) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, `the cluster key must be at least ${MIN_CLUSTER_KEY_LENGTH} bytes`);
    }
    return bytes;
  }
  if (jwtSecret === undefined) return undefined;
  const secret = typeof jwtSecret === "string" ? Buffer.from(jwtSecret, "utf8") : Buffer.from(jwtSecret);
  return Buffer.from(hkdfSync("sha256", secret, "arqon", "arqon control plane v1", 32));
}

interface Signed {
  /** Sender node id. */
  n: string;
  /** Sender's time, ms. */
  t: number;
  /** Random nonce: a message is applied once. */
  r: string;
  /** The body. */
  b: unknown;
}

export interface ControlMessageInfo {
  /** Id of the node that sent it. */
  from: string;
}

/**
 * Node-to-node messages of one server cluster (tenant changes, kicks, revocations, CASIL reloads) on the backends'
 * control plane, authenticated: each message carries an HMAC-SHA256 over its topic and body with the cluster key, a
 * timestamp and a nonce. A message with a wrong or missing signature, older or newer than 30 s, or seen before, is
 * dropped (counted and logged), so nobody who can publish on the NATS subjects without the key can forge or replay
 * one. A node never handles its own messages: whoever sends one has already applied its change locally. Without a
 * control plane (a single node) `send` does nothing.
 */
export class ClusterControl {
  private readonly handlers = new Map<string, Array<(body: unknown, info: ControlMessageInfo) => void | Promise<void>>>();
  private readonly seen = new Map<string, number>();
  private readonly off: (() => void) | undefined;
  /** Messages refused: bad signature or shape, stale, replayed. */
  rejected = 0;

  constructor(
    private readonly plane: ControlPlane | undefined,
    private readonly key: Buffer | undefined,
    /** This node's id: messages it sent itself are ignored. */
    readonly nodeId: string,
    private readonly logger: Logger,
  ) {
    if (plane && !key) {
      throw new ArqonError(ErrorCode.VALIDATION_ERROR, "a control plane needs a cluster key (clusterKey, or an HMAC auth secret to derive it from)");
    }
    this.off = plane?.onBroadcast((topic, data) => this.receive(topic, data));
  }

  /** Whether there is a control plane (other nodes to talk to). */
  get clustered(): boolean {
    return this.plane !== undefined;
  }

  /** Registers a handler of `topic`; returns a function that removes it. */
  on(topic: string, handler: (body: unknown, info: ControlMessageInfo) => void | Promise<void>): () => void {
    let list = this.handlers.get(topic);
    if (!list) this.handlers.set(topic, (list = []));
    list.push(handler);
    return () => {
      const now = this.handlers.get(topic);
      if (now) this.handlers.set(topic, now.filter((h) => h !== handler));
    };
  }

  /**
   * Broadcasts `body` to the other nodes. Resolves once the broadcast was handed to the backend; with `confirmed`,
   * once the backend has it (a broadcast another node sends after that arrives after this one).
   */
  async send(topic: string, body: unknown, confirmed = false): Promise<void> {
    if (!this.plane) return;
    const message: Signed = { n: this.nodeId, t: Date.now(), r: randomBytes(12).toString("base64url"), b: body };
    const json = JSON.stringify(message);
    await this.plane.broadcast(topic, utf8Encode(`${this.sign(topic, json)}.${json}`));
    if (confirmed) await this.plane.flush?.();
  }

  /** An HMAC-SHA256 of `data` with the cluster key (undefined without one): what other nodes can check. */
  mac(data: string): Buffer | undefined {
    return this.key === undefined ? undefined : createHmac("sha256", this.key).update("arqon mac v1\n").update(data).digest();
  }

  private sign(topic: string, json: string): string {
    return createHmac("sha256", this.key!).update(topic).update("\n").update(json).digest("base64url");
  }

  private reject(topic: string, why: string): void {
    this.rejected++;
    this.logger.warn({ topic, why }, "control message refused");
  }

  private receive(topic: string, data: Uint8Array): void {
    let text: string;
    try {
      text = utf8Decode(data);
    } catch {
      return this.reject(topic, "not text");
    }
    const dot = text.indexOf(".");
    if (dot <= 0) return this.reject(topic, "unsigned");
    const json = text.slice(dot + 1);
    const given = Buffer.from(text.slice(0, dot), "base64url");
    const expected = Buffer.from(this.sign(topic, json), "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return this.reject(topic, "bad signature");
    let message: Signed;
    try {
      message = JSON.parse(json) as Signed;
    } catch {
      return this.reject(topic, "malformed");
    }
    const now = Date.now();
    if (typeof message.t !== "number" || Math.abs(now - message.t) > CONTROL_MAX_SKEW_MS) return this.reject(topic, "stale");
    if (typeof message.r !== "string" || this.seen.has(message.r)) return this.reject(topic, "replayed");
    this.remember(message.r, now);
    // The sender applied its own change when it made it.
    if (message.n === this.nodeId) return;
    this.dispatch(topic, message.b, { from: String(message.n) });
  }

  private remember(nonce: string, now: number): void {
    this.seen.set(nonce, now);
    if (this.seen.size < 4096) return;
    for (const [r, at] of this.seen) {
      if (now - at > CONTROL_MAX_SKEW_MS * 2) this.seen.delete(r);
    }
  }

  private dispatch(topic: string, body: unknown, info: ControlMessageInfo): void {
    for (const handler of this.handlers.get(topic) ?? []) {
      try {
        const done = handler(body, info);
        if (done instanceof Promise) done.catch((err: unknown) => this.logger.error({ err, topic }, "control message handler failed"));
      } catch (err) {
        this.logger.error({ err, topic }, "control message handler failed");
      }
    }
  }

  /** Stops receiving control messages and drops every handler. */
  close(): void {
    this.off?.();
    this.handlers.clear();
  }
}
