"""wheel - the built wheel installs into a clean virtualenv and the hello-world bot runs from it against a gateway."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List

import pytest

from arqon import ArqonClient, Message
from support import REPO, Gateway, until

PACKAGE = REPO / "packages" / "sdk-py"
BOT = REPO / "apps" / "examples" / "hello-bot-py" / "hello_world_bot.py"


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(PACKAGE)],
        check=True,
        timeout=300,
    )
    wheels = list(dist.glob("arqon-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for expected in ("arqon/__init__.py", "arqon/py.typed", "arqon/client.py", "arqon/codec.py", "arqon/v1/arqon_pb2.py", "arqon/v1/arqon_pb2.pyi"):
        assert expected in names, expected
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheels[0])], check=True, timeout=300)
    return python


def test_wheel_installs_into_a_clean_virtualenv(wheel_venv: Path) -> None:
    out = subprocess.run(
        [str(wheel_venv), "-c", "import arqon, google.protobuf, websockets; print(arqon.__file__, arqon.__version__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=wheel_venv.parent,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        timeout=60,
    ).stdout
    path, version = out.split()
    assert "site-packages" in path and str(PACKAGE) not in path
    assert version == "0.1.0"


async def test_hello_world_bot_runs_from_the_wheel(wheel_venv: Path, gateway: Gateway, room_name: str) -> None:
    received: List[Message] = []
    async with ArqonClient(gateway.url, token=gateway.token("visitor")) as visitor:
        room = visitor.room(room_name)
        await room.subscribe(received.append)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(ARQON_URL=gateway.url, ARQON_TOKEN=gateway.token("hello-bot"), ARQON_ROOM=room_name)
        bot = await asyncio.create_subprocess_exec(
            str(wheel_venv), str(BOT), env=env, cwd=str(wheel_venv.parent), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            await until(lambda: any(m.sender == "hello-bot" for m in received), timeout=30, what="the bot's hello")
            hello = next(m for m in received if m.sender == "hello-bot")
            assert hello.payload == {"text": "Hello, World! I am a Python bot.", "bot": True}

            await room.publish({"text": "hi bot"})
            await until(lambda: sum(m.sender == "hello-bot" for m in received) == 2, timeout=10, what="the bot's answer")
            answer = [m for m in received if m.sender == "hello-bot"][1]
            assert answer.payload == {"text": "Hello visitor, you said: hi bot", "bot": True}
        finally:
            if bot.returncode is None:
                bot.send_signal(2)  # Ctrl+C
                try:
                    await asyncio.wait_for(bot.wait(), 10)
                except asyncio.TimeoutError:
                    bot.kill()
                    await bot.wait()
        out, err = await bot.communicate()
        assert b"hello-bot: in room" in out, err.decode()
        assert bot.returncode == 0, err.decode()
        assert b"Traceback" not in err, err.decode()
