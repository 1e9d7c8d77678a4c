import { arqonCluster2, arqonNats } from "./arqon-cluster.js";
import { arqonJson, arqonJson10, arqonJsonJose, arqonJsonOtel, arqonJsonOtelSampled, arqonProto, arqonProto10, arqonSse } from "./arqon.js";
import { centrifugo } from "./centrifugo.js";
import { floor, floorArqonJson, floorArqonJson10, floorArqonProto, floorArqonProto10, floorSplit } from "./floor.js";
import { socketio, socketioRaw } from "./socketio.js";
import type { SystemAdapter } from "./types.js";

/** Every system the harness knows; a new one is one adapter file and one line here. */
export const SYSTEMS: Record<string, SystemAdapter> = {
  [arqonJson.id]: arqonJson,
  [arqonProto.id]: arqonProto,
  [socketio.id]: socketio,
  [floor.id]: floor,
  [centrifugo.id]: centrifugo,
  [socketioRaw.id]: socketioRaw,
  [floorSplit.id]: floorSplit,
  [floorArqonJson.id]: floorArqonJson,
  [floorArqonProto.id]: floorArqonProto,
  [arqonJsonJose.id]: arqonJsonJose,
  [arqonJson10.id]: arqonJson10,
  [arqonJsonOtel.id]: arqonJsonOtel,
  [arqonJsonOtelSampled.id]: arqonJsonOtelSampled,
  [arqonProto10.id]: arqonProto10,
  [floorArqonJson10.id]: floorArqonJson10,
  [floorArqonProto10.id]: floorArqonProto10,
  [arqonSse.id]: arqonSse,
  [arqonNats.id]: arqonNats,
  [arqonCluster2.id]: arqonCluster2,
};

/** Systems in every run unless --systems says otherwise. */
export const DEFAULT_SYSTEMS = ["arqon-json", "arqon-proto", "socketio", "floor", "centrifugo"];

export function getSystem(id: string): SystemAdapter {
  const s = SYSTEMS[id];
  if (!s) throw new Error(`unknown system "${id}" (known: ${Object.keys(SYSTEMS).join(", ")})`);
  return s;
}

/**
 * Runs each system's `prepare` (Centrifugo: the build of its binary) before anything is measured; a system that
 * cannot run is reported with its reason and left out, and the others go on.
 */
export async function prepareSystems(ids: string[], log: (msg: string) => void): Promise<{ ready: string[]; unavailable: Record<string, string> }> {
  const unavailable: Record<string, string> = {};
  for (const id of ids) {
    const s = getSystem(id);
    if (!s.prepare) continue;
    const why = await s.prepare(log).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (why) {
      unavailable[id] = why;
      log(`${id}: not available: ${why}`);
    }
  }
  return { ready: ids.filter((id) => !(id in unavailable)), unavailable };
}
