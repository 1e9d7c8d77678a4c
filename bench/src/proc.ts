import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * CPU time and memory of another process, read from /proc (Linux): for systems whose server is not the Node process
 * the bench forked (Centrifugo, a Go binary the server process starts). `utime`/`stime` of /proc/<pid>/stat count
 * every thread of the process, in clock ticks (USER_HZ, 100 per second here: 10 ms resolution).
 */

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8", timeout: 5000 });
    const n = Number(r.stdout?.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** User and system CPU time of process `pid` since it started, in ms. */
export function procCpuMs(pid: number): { userMs: number; systemMs: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name: state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
  const hz = clockTicks();
  return { userMs: (Number(fields[11]) * 1000) / hz, systemMs: (Number(fields[12]) * 1000) / hz };
}

/** Resident set size of process `pid`, in bytes (VmRSS of /proc/<pid>/status). */
export function procRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/**
 * Read and write system calls made so far by process `pid`, all threads (`syscr`/`syscw` of /proc/<pid>/io: read,
 * readv, write, writev and the like on any file, sockets included; not sendmsg/recvmsg). NaN where it cannot be read.
 */
export function procSyscalls(pid: number): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const r = /^syscr:\s+(\d+)/m.exec(io);
    const w = /^syscw:\s+(\d+)/m.exec(io);
    return { reads: r ? Number(r[1]) : NaN, writes: w ? Number(w[1]) : NaN };
  } catch {
    return { reads: NaN, writes: NaN };
  }
}
