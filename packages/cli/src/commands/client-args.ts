
/** Flags every client-side command shares: where the server is and how to authenticate. */
export const CLIENT_FLAGS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

export const DEFAULT_WS_URL = "ws://127.0.0.1:9100/ws";

export function wsUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.ARQON_URL ?? DEFAULT_WS_URL;
}

/** The HTTP base of a gateway from its WebSocket URL (ws://h:p/ws → http://h:p). */
export function httpBase(url: string): string {
  const u = new URL(url);
  u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
  u.pathname = "";
  u.search = "";
  return u.origin;
}
