"""readme - "Hello World bot in 5 minutes" (docs/sdk-py.md) works as written: `arqon serve` in dev mode prints a
token, the section's install-and-run commands start the bot with it, and a client holding the same token talks to the
bot. The only changes to the commands: a free port instead of 9100 and a temporary folder instead of ./.venv."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path
from typing import Any, List, Optional

from arqon import ArqonClient, Message
from support import NODE_ARGS, REPO, until

DOC = REPO / "docs" / "sdk-py.md"
SECTION = "## Hello World bot in 5 minutes"


def section_blocks() -> List[List[str]]:
    text = DOC.read_text("utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start : end if end > 0 else len(text)]
    return [[line.strip() for line in block.strip().splitlines()] for block in re.findall(r"```sh\n(.*?)```", body, re.S)]


def serve_command() -> List[str]:
    if (REPO / "packages" / "cli" / "dist" / "cli.js").exists():
        return [str(REPO / "node_modules" / ".bin" / "arqon"), "serve"]  # what `npx arqon serve` runs
    return [*NODE_ARGS, str(REPO / "packages" / "cli" / "src" / "cli.ts"), "serve"]


async def read_until(stream: asyncio.StreamReader, pattern: str, seen: List[str], timeout: float = 60) -> "re.Match[str]":
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no line matching {pattern!r} in {seen}")
        line = (await asyncio.wait_for(stream.readline(), remaining)).decode()
        if not line:
            raise AssertionError(f"output ended before {pattern!r}: {seen}")
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match


async def stop(proc: Optional[asyncio.subprocess.Process]) -> None:
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(proc.wait(), 15)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()


async def test_hello_world_bot_section_works_as_written(tmp_path: Path) -> None:
    blocks = section_blocks()
    assert blocks[0][-1] == "npx arqon serve"
    install = blocks[1]
    assert install[0] == "python3 -m venv .venv && . .venv/bin/activate"
    assert "pip install ./packages/sdk-py" in install
    assert install[-1] == "python apps/examples/hello-bot-py/hello_world_bot.py"

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ARQON_TOKEN", "ARQON_URL", "ARQON_ROOM")}
    env["ARQON_LOG_LEVEL"] = "warn"
    serve: Optional[asyncio.subprocess.Process] = None
    bot: Optional[asyncio.subprocess.Process] = None
    try:
        serve = await asyncio.create_subprocess_exec(
            *serve_command(), "--port", "0", "--data-dir", str(tmp_path / ".arqon"), cwd=str(REPO), env=env, stdout=asyncio.subprocess.PIPE
        )
        assert serve.stdout is not None
        seen: List[str] = []
        url = (await read_until(serve.stdout, r"WebSocket\s+(ws://\S+)", seen)).group(1)
        await read_until(serve.stdout, r"A token \(sub alice", seen)
        token = (await read_until(serve.stdout, r"^\s+(\S+\.\S+\.\S+)\s*$", seen)).group(1)
        port = url.rsplit(":", 1)[1].split("/")[0]

        script = "\n".join(install)
        script = script.replace(".venv", str(tmp_path / "venv")).replace(":9100/", f":{port}/")
        script = script.replace("<the token that arqon serve printed>", token)
        script = script.replace("\npython apps/", "\nexec python apps/")
        assert ":9100" not in script and "<" not in script
        bot = await asyncio.create_subprocess_exec(
            "bash", "-ec", script, cwd=str(REPO), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert bot.stdout is not None
        bot_out: List[str] = []
        await read_until(bot.stdout, r"hello-bot: in room 'lobby'", bot_out, timeout=240)

        # step 3: another connection with the same token (as the wscat line does, token in the query)
        received: List[Message] = []
        async with ArqonClient(f"{url}?token={token}", token=token) as me:
            lobby = me.room("lobby")
            await lobby.subscribe(received.append)
            assert "alice" in {m.user_id for m in lobby.presence.current}
            await lobby.publish({"text": "hi bot"})
            await until(lambda: any(m.payload.get("bot") for m in received), timeout=10, what="the bot's answer")
            answer = next(m for m in received if m.payload.get("bot"))
            assert answer.payload == {"text": "Hello alice, you said: hi bot", "bot": True}
            assert answer.sender == "alice"
    finally:
        await stop(bot)
        await stop(serve)
    assert bot is not None and bot.returncode == 0
