import { startChat } from "./chat-server.js";

const port = Number(process.env.PORT ?? 8080);
const chat = await startChat({ port, host: process.env.HOST ?? "127.0.0.1", secret: process.env.ARQON_JWT_SECRET });
console.log(`browser chat on ${chat.url}  (open it in two windows: ${chat.url}?user=alice and ${chat.url}?user=bob)`);
const stop = (): void => {
  void chat.close().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
