import { readFileSync } from "node:fs";

const TCP_STATES: Record<string, string> = {
  "01": "ESTABLISHED",
  "02": "SYN_SENT",
  "03": "SYN_RECV",
  "04": "FIN_WAIT1",
  "05": "FIN_WAIT2",
  "06": "TIME_WAIT",
  "07": "CLOSE",
  "08": "CLOSE_WAIT",
  "09": "LAST_ACK",
  "0A": "LISTEN",
  "0B": "CLOSING",
};

export interface TcpRow {
  state: string;
  txQueue: number;
  rxQueue: number;
}

/**
 * Both ends of a loopback TCP connection in /proc/net/tcp (IPv4, 127.0.0.1): the client's (local port `clientPort`)
 * and the server's (local port `serverPort`, remote `clientPort`), each with its state and queues. Undefined for an
 * end that is gone (or where /proc cannot be read).
 */
export function tcpPair(clientPort: number, serverPort: number, text?: string): { client?: TcpRow; server?: TcpRow } {
  let table = text;
  if (table === undefined) {
    try {
      table = readFileSync("/proc/net/tcp", "latin1");
    } catch {
      return {};
    }
  }
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, "0");
  const c = `:${hex(clientPort)}`;
  const s = `:${hex(serverPort)}`;
  const out: { client?: TcpRow; server?: TcpRow } = {};
  for (const line of table.split("\n")) {
    // "  sl  local_address rem_address   st tx_queue:rx_queue ..."
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [local, remote, st, queues] = [f[1]!, f[2]!, f[3]!, f[4]!];
    const [tx, rx] = queues.split(":").map((x) => parseInt(x, 16));
    const row = { state: TCP_STATES[st] ?? st, txQueue: tx ?? 0, rxQueue: rx ?? 0 };
    if (local.endsWith(c) && remote.endsWith(s)) out.client = row;
    else if (local.endsWith(s) && remote.endsWith(c)) out.server = row;
  }
  return out;
}
