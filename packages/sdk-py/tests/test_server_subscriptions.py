"""Server-side subscriptions against a real gateway: the application backend (a ``role: "server"`` token on the
server API) subscribes a user's connection to a room, and the Python client surfaces it."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any, Dict, List

from arqon import ArqonClient, Message, Room
from support import Gateway, until


async def backend(gateway: Gateway, action: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """POSTs to the gateway's server API as tenant acme's backend and returns the JSON answer (status 200 expected)."""
    url = gateway.url.replace("ws://", "http://").rsplit("/ws", 1)[0] + f"/api/v1/tenants/acme/{action}"
    token = gateway.token("backend", role="server")

    def call() -> Dict[str, Any]:
        request = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            answer: Dict[str, Any] = json.loads(response.read())
            return answer

    return await asyncio.get_running_loop().run_in_executor(None, call)


async def test_server_subscribe_hands_the_client_a_subscribed_room(gateway: Gateway, room_name: str) -> None:
    rooms: List[Room] = []
    got: List[Message] = []

    def on_subscribed(room: Room) -> None:
        rooms.append(room)
        room.on("message", got.append)

    async with ArqonClient(gateway.url, token=gateway.token("pia")) as client:
        client.on_server_subscribed(on_subscribed)
        assert await backend(gateway, "subscribe", {"user": "pia", "room": room_name}) == {"subscribedHere": 1}
        await until(lambda: len(rooms) == 1, what="on_server_subscribed")
        room = rooms[0]
        assert room is client.room(room_name)
        assert room.subscribed
        assert room.last_subscribed is not None
        assert room.last_subscribed.server is True
        assert room.last_subscribed.reason == ""
        assert [m.user_id for m in room.last_subscribed.members] == ["pia"]
        await backend(gateway, "publish", {"room": room_name, "payload": {"n": 1}})
        await until(lambda: len(got) == 1, what="the message")
        assert got[0].payload == {"n": 1}
        assert got[0].sender == "backend"


async def test_server_unsubscribe_ends_the_room_with_reason_server(gateway: Gateway, room_name: str) -> None:
    ended: List[str] = []
    server_ended: List[Room] = []
    async with ArqonClient(gateway.url, token=gateway.token("quinn")) as client:
        client.on_server_unsubscribed(server_ended.append)
        await backend(gateway, "subscribe", {"user": "quinn", "room": room_name})
        room = client.room(room_name)
        room.on("unsubscribed", ended.append)
        await until(lambda: room.subscribed, what="subscribed")

        async def read_all() -> List[Message]:
            return [m async for m in room.messages()]

        reader = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.05)
        assert await backend(gateway, "unsubscribe", {"user": "quinn", "room": room_name}) == {"unsubscribedHere": 1}
        # The iterator ends when the server ends the subscription.
        assert await asyncio.wait_for(reader, 5) == []
        assert ended == ["server"]
        assert server_ended == [room]
        assert not room.subscribed


async def test_reconnect_does_not_renew_a_server_subscription_but_renews_the_clients_own(gateway: Gateway, room_name: str) -> None:
    server_rooms: List[Room] = []
    got: List[Message] = []
    own = f"{room_name}-own"
    async with ArqonClient(gateway.url, token=gateway.token("rex"), backoff_initial=0.05, backoff_max=0.2) as client:
        client.on_server_subscribed(server_rooms.append)
        await client.room(own).subscribe()
        await backend(gateway, "subscribe", {"user": "rex", "room": room_name})
        await until(lambda: len(server_rooms) == 1, what="the server subscription")
        room = server_rooms[0]
        room.on("message", got.append)
        first_id = client.client_id

        # A reconnectable close (4003) through the server API's disconnect route.
        assert await backend(gateway, "disconnect", {"user": "rex", "code": 4003}) == {"closedHere": 1}
        await until(lambda: client.connected and client.client_id != first_id and client.room(own).subscribed, what="reconnected")
        assert not room.subscribed
        await asyncio.sleep(0.1)
        assert len(server_rooms) == 1  # nothing subscribed the room again by itself

        # What a backend does on a connect event: subscribe the user again.
        assert await backend(gateway, "subscribe", {"user": "rex", "room": room_name}) == {"subscribedHere": 1}
        await until(lambda: len(server_rooms) == 2, what="the second server subscription")
        assert server_rooms[1] is room and room.subscribed
        await backend(gateway, "publish", {"room": room_name, "payload": {"after": "reconnect"}})
        await until(lambda: len(got) == 1, what="the message")
        assert got[0].payload == {"after": "reconnect"}


async def test_subscribe_on_a_server_room_makes_it_the_clients_own(gateway: Gateway, room_name: str) -> None:
    server_rooms: List[Room] = []
    async with ArqonClient(gateway.url, token=gateway.token("sam"), backoff_initial=0.05, backoff_max=0.2) as client:
        client.on_server_subscribed(server_rooms.append)
        await backend(gateway, "subscribe", {"user": "sam", "room": room_name})
        await until(lambda: len(server_rooms) == 1, what="the server subscription")
        room = server_rooms[0]
        await room.subscribe()
        first_id = client.client_id
        assert await backend(gateway, "disconnect", {"user": "sam", "code": 4003}) == {"closedHere": 1}
        await until(lambda: client.client_id != first_id and room.subscribed, what="renewed by the client")
        assert room.last_subscribed is not None
        assert room.last_subscribed.server is False
        assert room.last_subscribed.resubscribe is True
