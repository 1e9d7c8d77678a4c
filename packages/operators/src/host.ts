import type { Frame, KeyValueStore } from "@arqon/core";

/** What a command handler is told about its caller (a structural subset of @arqon/server's CommandContext). */
export interface OperatorCommandContext {
  command: string;
  args: unknown;
  tenant: string;
  sub: string;
  admin: boolean;
  room?: string;
}

export type OperatorHandler = (ctx: OperatorCommandContext) => unknown;

export interface OperatorPublishResult {
  id?: string;
  offset: number;
  epoch: string;
}

/**
 * The part of a gateway operators use. `ArqonServer` from @arqon/server satisfies it; operators never import the
 * server package (arrows point one way), so anything with this shape can host them.
 */
export interface OperatorHost {
  registerCommand(name: string, handler: OperatorHandler, options?: { adminOnly?: boolean; description?: string }): () => void;
  readonly commands: { disable(name: string, reason?: string): void };
  /** Publishes as an operator; the host inspects it with CASIL (path "operator") before it is stored or delivered. */
  publish(
    tenant: string,
    room: string,
    payload: unknown,
    options?: { headers?: Record<string, string>; sender?: string; path?: "operator" },
  ): Promise<OperatorPublishResult>;
  readonly kv: KeyValueStore;
  /** Server-side room subscription (messages only); needed by op.webhook. */
  subscribe?(tenant: string, room: string, handler: (frame: Frame) => void): Promise<() => Promise<void>>;
}

export interface Operator {
  /** Stops timers and subscriptions; registered commands are removed. */
  close(): Promise<void>;
}
