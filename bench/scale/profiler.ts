/**
 * CPU profiling of one phase of a scale-benchmark child (run.ts --profile-dir): IPC {type:"profile-start"} starts the
 * V8 sampler in this process, {type:"profile-stop", file} writes a .cpuprofile (for `npm run prof -w @arqon/bench`) and
 * answers {type:"profiled", file}.
 */
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";

let session: Session | undefined;

export async function handleProfileMessage(msg: { type: string; file?: string }): Promise<boolean> {
  if (msg.type === "profile-start") {
    session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 200 });
    await session.post("Profiler.start");
    return true;
  }
  if (msg.type === "profile-stop") {
    if (session) {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(msg.file!, JSON.stringify(profile));
      session.disconnect();
      session = undefined;
    }
    process.send!({ type: "profiled", file: msg.file });
    return true;
  }
  return false;
}
