import { arqonJson, arqonJson11, arqonJsonJose, arqonProto, arqonProto11 } from "./arqon.js";
import { floor, floorArqonJson, floorArqonJson11, floorArqonProto, floorArqonProto11, floorSplit } from "./floor.js";
import { socketio, socketioRaw } from "./socketio.js";
import type { SystemAdapter } from "./types.js";

/** Every system the harness knows; a new one is one adapter file and one line here. */
export const SYSTEMS: Record<string, SystemAdapter> = {
  [arqonJson.id]: arqonJson,
  [arqonProto.id]: arqonProto,
  [socketio.id]: socketio,
  [floor.id]: floor,
  [socketioRaw.id]: socketioRaw,
  [floorSplit.id]: floorSplit,
  [floorArqonJson.id]: floorArqonJson,
  [floorArqonProto.id]: floorArqonProto,
  [arqonJsonJose.id]: arqonJsonJose,
  [arqonJson11.id]: arqonJson11,
  [arqonProto11.id]: arqonProto11,
  [floorArqonJson11.id]: floorArqonJson11,
  [floorArqonProto11.id]: floorArqonProto11,
};

/** Systems in every run unless --systems says otherwise. */
export const DEFAULT_SYSTEMS = ["arqon-json", "arqon-proto", "socketio", "floor"];

export function getSystem(id: string): SystemAdapter {
  const s = SYSTEMS[id];
  if (!s) throw new Error(`unknown system "${id}" (known: ${Object.keys(SYSTEMS).join(", ")})`);
  return s;
}
