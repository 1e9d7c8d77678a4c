"""Fixtures: a real gateway (a Node process running @arqon/server on a free loopback port), tokens for it, a TypeScript
peer client, and unique room names. The helpers live in support.py."""

from __future__ import annotations

from typing import Any, List

import pytest

from support import Gateway, Peer


@pytest.fixture(scope="session")
def gateway() -> Any:
    gw = Gateway().start()
    yield gw
    gw.stop()


@pytest.fixture
def own_gateway() -> Any:
    """A gateway of the test's own, for tests that restart it."""
    gw = Gateway().start()
    yield gw
    gw.stop()


_room_ids = iter(range(1, 1_000_000))


@pytest.fixture
def room_name(request: pytest.FixtureRequest) -> str:
    """A room name no other test uses on the shared gateway."""
    return f"py-{request.node.name.split('[')[0].replace('_', '-')[:40]}-{next(_room_ids)}"


@pytest.fixture
async def peers() -> Any:
    started: List[Peer] = []

    async def start(url: str, token: str, codec: str = "json") -> Peer:
        peer = await Peer.start(url, token, codec)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        await peer.close()


