/** The URL a client connects to when none is given: a local `arqon serve`. */
export const DEFAULT_URL = "ws://127.0.0.1:9100/ws";
