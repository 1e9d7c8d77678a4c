import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import WebSocket from "ws";
import { extractTs } from "../payload.js";
import type { ClientFactory, ClientOptions, RunningServer, SystemAdapter } from "./types.js";

/**
 * Socket.IO 4 with the WebSocket transport only. The server does what a Socket.IO app does for a room: `join` on a
 * `sub` event (acknowledged), `socket.to(room).emit("m", payload)` on a `pub` event (sender excluded).
 *
 * Two client modes: `socketio` uses socket.io-client (websocket transport, one Manager per socket) — what Socket.IO
 * users run; `socketio-raw` speaks Engine.IO v4 / Socket.IO v5 framing directly over a `ws` socket, the lean client
 * that shows the server's own ceiling.
 */

async function startServer(): Promise<RunningServer> {
  const { Server } = await import("socket.io");
  const http = createServer();
  const io = new Server(http, { transports: ["websocket"], serveClient: false, perMessageDeflate: false });
  io.on("connection", (socket) => {
    socket.on("sub", (room: unknown, ack: unknown) => {
      if (typeof room === "string") void socket.join(room);
      if (typeof ack === "function") (ack as () => void)();
    });
    socket.on("pub", (room: unknown, payload: unknown) => {
      if (typeof room === "string") socket.to(room).emit("m", payload);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    port: (http.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        void io.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

async function createLibClientFactory(opts: ClientOptions): Promise<ClientFactory> {
  const { io } = await import("socket.io-client");
  const url = `http://127.0.0.1:${opts.port}`;
  return {
    prepare: async () => undefined,
    connect: (_index, hooks) =>
      new Promise((resolve, reject) => {
        const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 30_000 });
        socket.on("m", (p: { ts?: number }) => {
          if (p && typeof p.ts === "number") hooks.onTs(p.ts);
        });
        socket.once("connect_error", (err) => {
          socket.close();
          reject(err);
        });
        socket.once("connect", () =>
          resolve({
            subscribe: (room) =>
              new Promise<void>((res, rej) => {
                socket.timeout(30_000).emit("sub", room, (err: unknown) => (err ? rej(err) : res()));
              }),
            publish: (room, payload) => socket.emit("pub", room, JSON.parse(payload)),
            close: () => socket.close(),
          }),
        );
      }),
  };
}

async function createRawClientFactory(opts: ClientOptions): Promise<ClientFactory> {
  const url = `ws://127.0.0.1:${opts.port}/socket.io/?EIO=4&transport=websocket`;
  return {
    prepare: async () => undefined,
    connect: (_index, hooks) =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        const acks = new Map<number, () => void>();
        let nextAck = 1;
        ws.on("message", (data: Buffer) => {
          const c0 = data[0];
          if (c0 === 0x34 /* 4: message */) {
            const c1 = data[1];
            if (c1 === 0x32 /* 2: event */) {
              const ts = extractTs(data);
              if (ts >= 0) hooks.onTs(ts);
            } else if (c1 === 0x33 /* 3: ack */) {
              const id = parseInt(data.toString("latin1", 2, data.indexOf(0x5b)), 10);
              const cb = acks.get(id);
              acks.delete(id);
              cb?.();
            } else if (c1 === 0x30 /* 0: namespace connect */) {
              ws.off("error", reject);
              ws.on("error", () => undefined);
              resolve({
                subscribe: (room) =>
                  new Promise<void>((res) => {
                    const id = nextAck++;
                    acks.set(id, res);
                    ws.send(`42${id}["sub",${JSON.stringify(room)}]`);
                  }),
                publish: (room, payload) => ws.send(`42["pub",${JSON.stringify(room)},${payload}]`),
                close: () => ws.terminate(),
              });
            }
          } else if (c0 === 0x32 /* ping */) {
            ws.send("3");
          } else if (c0 === 0x30 /* open */) {
            ws.send("40");
          }
        });
        ws.once("error", reject);
      }),
  };
}

export const socketio: SystemAdapter = {
  id: "socketio",
  label: "Socket.IO 4.8",
  clientNote: "socket.io-client (transports: websocket); it runs on ws underneath but adds its own framing and parsing",
  startServer,
  createClientFactory: createLibClientFactory,
};

export const socketioRaw: SystemAdapter = {
  id: "socketio-raw",
  label: "Socket.IO 4.8 (raw ws client)",
  clientNote: "ws clients speaking Engine.IO/Socket.IO framing directly (lean client mode)",
  startServer,
  createClientFactory: createRawClientFactory,
};
