"""Hello World bot for ArqonBus: joins a room, says hello, and answers every message.

    export ARQON_URL=ws://127.0.0.1:9100/ws ARQON_TOKEN=<a token>
    python hello_world_bot.py

ARQON_ROOM picks the room (default "lobby"). Stop it with Ctrl+C.
"""

import asyncio
import os
import sys

from arqon import ArqonClient, Message

URL = os.environ.get("ARQON_URL", "ws://127.0.0.1:9100/ws")
TOKEN = os.environ.get("ARQON_TOKEN", "")
ROOM = os.environ.get("ARQON_ROOM", "lobby")


async def main() -> None:
    async with ArqonClient(URL, token=TOKEN) as client:
        room = client.room(ROOM)

        async def answer(message: Message) -> None:
            payload = message.payload
            if isinstance(payload, dict) and payload.get("bot"):
                return  # never answer a bot (two bots would chat forever)
            text = payload.get("text", payload) if isinstance(payload, dict) else payload
            await room.publish({"text": f"Hello {message.sender}, you said: {text}", "bot": True})

        await room.subscribe(answer)
        await room.publish({"text": "Hello, World! I am a Python bot.", "bot": True})
        print(f"hello-bot: in room {ROOM!r} at {URL} as connection {client.client_id}; Ctrl+C stops me", flush=True)
        await client.wait_closed()


if __name__ == "__main__":
    if not TOKEN:
        sys.exit("hello-bot: set ARQON_TOKEN (npx arqon serve prints one)")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("hello-bot: bye", flush=True)
