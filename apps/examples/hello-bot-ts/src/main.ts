import { startHelloBot } from "./bot.js";

const url = process.env.ARQON_URL ?? "ws://127.0.0.1:9100/ws";
const token = process.env.ARQON_TOKEN;
if (!token) {
  console.error("ARQON_TOKEN is not set. Get one with: npx arqon token --sub hello-bot");
  process.exit(2);
}
const bot = await startHelloBot({ url, token, room: process.env.ARQON_ROOM ?? "lobby", log: (line) => console.log(line) });
const stop = (): void => {
  void bot.stop().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
