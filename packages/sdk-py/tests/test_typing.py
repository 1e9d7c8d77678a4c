"""typing - `mypy --strict` passes on the package ([tool.mypy] in pyproject.toml: src/arqon, Python 3.10 semantics),
and on the tests and the hello-world bot, which use the package the way a user's type-checked code does."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import REPO, python_env

PACKAGE = REPO / "packages" / "sdk-py"
BOT = REPO / "apps" / "examples" / "hello-bot-py" / "hello_world_bot.py"


def mypy(*args: str) -> None:
    # --strict on the command line as well, so this test never runs a weakened configuration; the per-module override
    # for the generated arqon.v1 code in pyproject.toml still applies.
    command = [sys.executable, "-m", "mypy", "--strict", *args]
    env = {**python_env(), "MYPYPATH": str(PACKAGE / "src")}  # `import arqon` is the source tree, however it is installed
    result = subprocess.run(command, cwd=PACKAGE, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command[2:])} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}", pytrace=False)


def test_package_passes_mypy_strict() -> None:
    mypy()  # the files of [tool.mypy]


def test_tests_and_hello_bot_pass_mypy_strict() -> None:
    mypy("tests", str(BOT))
