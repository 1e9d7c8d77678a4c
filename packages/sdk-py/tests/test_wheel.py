"""wheel - `python -m build` makes an sdist and, from it, a wheel; the wheel alone installs into a clean virtualenv
(no source tree, no PYTHONPATH, no editable install) and the hello-world bot runs from it against a gateway."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from arqon import ArqonClient, Message
from support import REPO, Gateway, python_env, until

PACKAGE = REPO / "packages" / "sdk-py"
BOT = REPO / "apps" / "examples" / "hello-bot-py" / "hello_world_bot.py"


def pyproject_version() -> str:
    """The version as scripts/versions.mjs and scripts/release-check.mjs read (and write) it."""
    match = re.search(r'^version = "([^"]+)"$', (PACKAGE / "pyproject.toml").read_text("utf-8"), re.M)
    assert match is not None, "no version in pyproject.toml"
    return match.group(1)


VERSION = pyproject_version()

MODULES = ["__init__.py", "client.py", "codec.py", "delta.py", "errors.py", "server.py", "types.py", "webhooks.py"]
PACKAGE_FILES = [*MODULES, "py.typed", "v1/__init__.py", "v1/arqon_pb2.py", "v1/arqon_pb2.pyi"]


@dataclass
class Dist:
    sdist: Path
    wheel: Path
    python: Path  # of a fresh virtualenv with only the wheel (and its dependencies) installed


def run(command: List[str], cwd: Optional[Path] = None) -> str:
    """Runs ``command`` (without PYTHONPATH) and returns its stdout; fails the test with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, env=python_env(), capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}", pytrace=False)
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    tmp = tmp_path_factory.mktemp("dist")
    out = tmp / "dist"
    # Without --sdist/--wheel, build makes the sdist, unpacks it and builds the wheel from that (in isolated build
    # environments), so the wheel also proves the sdist is complete.
    run([sys.executable, "-m", "build", "--outdir", str(out), str(PACKAGE)])
    sdists, wheels = sorted(out.glob("*.tar.gz")), sorted(out.glob("*.whl"))
    assert [p.name for p in sdists] == [f"arqon-{VERSION}.tar.gz"], sdists
    assert [p.name for p in wheels] == [f"arqon-{VERSION}-py3-none-any.whl"], wheels

    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    # Only the wheel, and dependencies only as wheels: nothing is built from source in the clean environment.
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:", str(wheels[0])], cwd=tmp)
    return Dist(sdists[0], wheels[0], python)


def metadata(text: str) -> Dict[str, List[str]]:
    parsed = Parser().parsestr(text, headersonly=True)
    return {key: parsed.get_all(key) or [] for key in set(parsed.keys())}


def test_sdist_holds_the_sources_the_generated_code_and_no_tests(dist: Dist) -> None:
    top = f"arqon-{VERSION}/"
    with tarfile.open(dist.sdist) as sdist:
        members = sdist.getmembers()
        pkg_info = sdist.extractfile(top + "PKG-INFO")
        assert pkg_info is not None
        info = metadata(pkg_info.read().decode("utf-8"))
    assert all(m.name.startswith(top) for m in members), [m.name for m in members]
    files = {m.name[len(top) :] for m in members if m.isfile()}
    required = {"pyproject.toml", "README.md", "LICENSE", "PKG-INFO", *(f"src/arqon/{f}" for f in PACKAGE_FILES)}
    assert required <= files, sorted(required - files)
    # nothing else: no tests, scripts, package.json or virtualenv (hatchling adds the .gitignore it honoured)
    assert files - required <= {".gitignore"}, sorted(files - required)
    assert info["Version"] == [VERSION]


def test_wheel_holds_the_package_py_typed_and_the_license(dist: Dist) -> None:
    info_dir = f"arqon-{VERSION}.dist-info/"
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        info = metadata(wheel.read(info_dir + "METADATA").decode("utf-8"))
        license_file = wheel.read(info_dir + "licenses/LICENSE") if info_dir + "licenses/LICENSE" in names else b""
    package = {f"arqon/{f}" for f in PACKAGE_FILES}
    assert package <= names, sorted(package - names)
    assert {n for n in names if not n.startswith(info_dir)} == package, sorted(names)  # no tests, no stray files
    assert license_file == (PACKAGE / "LICENSE").read_bytes(), "no (or another) dist-info/licenses/LICENSE"  # PEP 639
    assert info["Name"] == ["arqon"]
    assert info["Version"] == [VERSION]
    assert info["License-Expression"] == ["Apache-2.0"]
    assert info["License-File"] == ["LICENSE"]
    assert "Typing :: Typed" in info["Classifier"]


def test_wheel_installs_into_a_clean_virtualenv(dist: Dist) -> None:
    probe = (
        "import json, importlib.metadata as md, pathlib, arqon, google.protobuf, websockets; "
        "d = md.distribution('arqon'); "
        "print(json.dumps({'file': arqon.__file__, 'version': arqon.__version__, 'dist_version': d.version, "
        "'direct_url': json.loads(d.read_text('direct_url.json') or 'null'), "
        "'py_typed': (pathlib.Path(arqon.__file__).parent / 'py.typed').is_file()}))"
    )
    found = json.loads(run([str(dist.python), "-c", probe], cwd=dist.python.parents[2]))
    assert "site-packages" in found["file"] and str(PACKAGE) not in found["file"], found
    assert found["version"] == found["dist_version"] == VERSION  # arqon.__version__ (SDK_VERSION) = the wheel's = pyproject's
    assert found["py_typed"] is True
    # installed from the wheel file, not a directory or an editable checkout
    assert found["direct_url"]["url"].endswith(dist.wheel.name) and "archive_info" in found["direct_url"], found


def test_arqon_server_imports_without_httpx_and_names_the_extra(dist: Dist) -> None:
    # The wheel's own dependencies do not include httpx (the `server` extra does): importing arqon.server works, and
    # only creating a client asks for the extra.
    probe = (
        "import importlib.util, json, arqon.server\n"
        "try:\n"
        "    arqon.server.ArqonServerClient('http://127.0.0.1:1')\n"
        "    hint = None\n"
        "except ImportError as err:\n"
        "    hint = str(err)\n"
        "print(json.dumps({'httpx': importlib.util.find_spec('httpx') is not None, 'hint': hint}))\n"
    )
    found = json.loads(run([str(dist.python), "-c", probe], cwd=dist.python.parents[2]))
    assert found == {"httpx": False, "hint": 'arqon.server needs httpx: pip install "arqon[server]"'}


async def test_hello_world_bot_runs_from_the_wheel(dist: Dist, gateway: Gateway, room_name: str) -> None:
    received: List[Message] = []
    async with ArqonClient(gateway.url, token=gateway.token("visitor")) as visitor:
        room = visitor.room(room_name)
        await room.subscribe(received.append)
        env = python_env()
        env.update(ARQON_URL=gateway.url, ARQON_TOKEN=gateway.token("hello-bot"), ARQON_ROOM=room_name)
        bot = await asyncio.create_subprocess_exec(
            str(dist.python), str(BOT), env=env, cwd=str(dist.python.parents[2]), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
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
