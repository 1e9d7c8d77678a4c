import { describe, expect, it } from "vitest";
import { tcpPair } from "../src/tcp.js";
import { mergeTimelines } from "../src/workloads/slow-consumer.js";

// Two connections between 127.0.0.1:41000 (client, 0xA028) and 127.0.0.1:8080 (server, 0x1F90), as /proc/net/tcp
// lists them: the server's end in FIN_WAIT1 with 3.7 MB unsent, the client's with 128 KB unread.
const TABLE = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A028 04 00387000:00000000 01:00000014 00000000     0        0 0 3 0000000000000000 20 4 1 10 -1
   2: 0100007F:A028 0100007F:1F90 01 00000000:00020000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 0 10 -1
   3: 0100007F:A029 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 0 10 -1
`;

describe("slow-consumer helpers", () => {
  it("finds both ends of a loopback connection in /proc/net/tcp", () => {
    const t = tcpPair(0xa028, 0x1f90, TABLE);
    expect(t.server).toEqual({ state: "FIN_WAIT1", txQueue: 0x387000, rxQueue: 0 });
    expect(t.client).toEqual({ state: "ESTABLISHED", txQueue: 0, rxQueue: 0x20000 });
    expect(tcpPair(0xa030, 0x1f90, TABLE)).toEqual({});
  });

  it("merges the subscribers' timelines by slice, from the pause", () => {
    const merged = mergeTimelines(
      [
        { from: 1000, max: [1, 5, 2] },
        { from: 1100, max: [7, 1] },
      ],
      1100,
    );
    expect(merged).toEqual([
      { atS: -0.1, maxMs: 1 },
      { atS: 0, maxMs: 7 },
      { atS: 0.1, maxMs: 2 },
    ]);
  });
});
