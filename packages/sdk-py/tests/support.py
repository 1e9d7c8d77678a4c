"""Test support: a real gateway (a Node process running @arqon/server on a free loopback port), HS256 tokens for it, and
a TypeScript peer client (ws + @arqon/core codecs) driven over stdin/stdout."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
TSX = REPO / "node_modules" / ".bin" / "tsx"
NODE_ARGS = [str(TSX), "--conditions=arqon-source"]
START_TIMEOUT = 60.0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(secret: str, sub: str = "alice", *, tenant: str = "acme", ttl: int = 3600, **claims: Any) -> str:
    """An HS256 JWT as the gateway expects it (sub, tenant, exp)."""
    now = int(time.time())
    payload = {"sub": sub, "tenant": tenant, "iat": now, "exp": now + ttl, **claims}
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = _b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + _b64url(
        json.dumps(payload, separators=(",", ":")).encode()
    )
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)


class Gateway:
    """A gateway process; ``restart()`` stops it (clients see 1001) and starts a new one on the same port."""

    def __init__(self, *, casil: bool = False) -> None:
        self.casil = casil
        self.secret = secrets.token_hex(16)
        #: The operator key the gateway accepts on its server API (arqon.server tests).
        self.operator_key = "op-" + secrets.token_hex(16)
        self.proc: Optional[subprocess.Popen[str]] = None
        self.port = 0
        self.url = ""

    def start(self, port: int = 0) -> "Gateway":
        self.proc = subprocess.Popen(
            [*NODE_ARGS, str(HERE / "gateway.mts"), "--port", str(port), "--jwt-secret", self.secret, "--operator-key", self.operator_key, *(["--casil"] if self.casil else [])],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip().startswith("{"):
                break
            if self.proc.poll() is not None:
                break
        if not line.strip().startswith("{"):
            self.stop()
            raise RuntimeError(f"the gateway did not start (exit {self.proc.poll() if self.proc else None})")
        info = json.loads(line)
        self.port = info["port"]
        self.url = info["url"]
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def restart(self, *, new_secret: bool = False) -> None:
        """Stops the gateway and starts a new one on the same port (with a new signing secret when asked)."""
        port = self.port
        self.stop()
        if new_secret:
            self.secret = secrets.token_hex(16)
        self.start(port)

    def token(self, sub: str = "alice", **claims: Any) -> str:
        return mint_token(self.secret, sub, **claims)

    @property
    def http_url(self) -> str:
        """http://127.0.0.1:<port>, where the server API answers."""
        return f"http://127.0.0.1:{self.port}"


class Peer:
    """A TypeScript client (tests/peer.mts) in its own Node process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.frames: List[Dict[str, Any]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, url: str, token: str, codec: str = "json") -> "Peer":
        proc = await asyncio.create_subprocess_exec(
            *NODE_ARGS,
            str(HERE / "peer.mts"),
            url,
            token,
            codec,
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        peer = cls(proc)
        await peer.wait_for(lambda f: f["type"] == "welcome", timeout=START_TIMEOUT)
        return peer

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            self.frames.append(json.loads(line))
            self._new.set()

    async def send(self, frame: Dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(frame) + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_for(self, predicate: Callable[[Dict[str, Any]], bool], timeout: float = 5.0) -> Dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if predicate(frame):
                    return frame
            seen = len(self.frames)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"peer: no matching frame within {timeout}s; got {self.frames[-10:]}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.gather(self._reader, return_exceptions=True)


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Waits (bounded) until ``predicate()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def python_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


class CuttableProxy:
    """A TCP proxy in front of the gateway whose connections the test can cut (the client sees 1006)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: List[asyncio.StreamWriter] = []
        self.server: Optional[asyncio.base_events.Server] = None
        self.port = 0

    async def start(self) -> "CuttableProxy":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for w in self.writers:
            w.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
