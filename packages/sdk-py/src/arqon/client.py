"""The asyncio client: one WebSocket connection to an ArqonBus gateway, rooms on top of it, reconnect underneath.

```python
async with ArqonClient("ws://127.0.0.1:9100/ws", token=token) as client:
    room = client.room("lobby")
    await room.subscribe(lambda m: print(m.sender, m.payload))
    ack = await room.publish({"text": "hi"})
```
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import random
import re
import time
from dataclasses import replace
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Literal,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from . import codec
from . import codec as codec_module
from .delta import DeltaError, apply_delta
from .errors import (
    ArqonError,
    AuthError,
    CloseCode,
    CommandError,
    ConnectionClosedError,
    FrameDecodeError,
    PROTOCOL_UNSUPPORTED,
    RequestError,
    RequestTimeoutError,
    StateConflictError,
    should_reconnect,
)
from .types import Ack, ClientStatus, Member, Message, Position, StateEntry, Subscribed, Welcome

__all__ = ["ArqonClient", "Room", "RoomPresence", "RoomState", "DEFAULT_URL", "SDK_VERSION"]

#: A local ``arqon serve``.
DEFAULT_URL = "ws://127.0.0.1:9100/ws"
SDK_VERSION = "0.1.0"

Codec = Literal["json", "protobuf"]
Protocol = Literal["1.0", "1.1"]
TokenSource = Callable[[], Union[str, Awaitable[str]]]
Handler = Callable[..., Any]

_END = object()


def _member(m: Mapping[str, Any]) -> Member:
    return Member(
        client_id=m.get("clientId", ""),
        user_id=m.get("userId", ""),
        info=m.get("info"),
        joined_at=m.get("joinedAt", 0),
        connections=m.get("connections", 0),
    )


def _entry(e: Mapping[str, Any]) -> StateEntry:
    return StateEntry(
        key=e["key"],
        value=e.get("value"),
        version=e.get("version", 0),
        deleted=e.get("deleted", False),
        updated_at=e.get("updatedAt", 0),
        updated_by=e.get("updatedBy", ""),
    )


def _message(frame: Mapping[str, Any], room: str) -> Message:
    binary = frame.get("payloadFormat") == "binary"
    return Message(
        room=frame.get("room", room),
        payload=codec.payload_bytes(frame) if binary else frame.get("payload"),
        id=frame.get("id", ""),
        offset=frame.get("offset", 0),
        epoch=frame.get("epoch", ""),
        headers=dict(frame.get("headers", {})),
        timestamp=frame.get("timestamp", 0),
        sender=frame.get("sender", ""),
        binary=binary,
        delta=frame.get("delta", False),
        inspection=frame.get("inspection"),
    )


def _request_error(frame: Mapping[str, Any]) -> RequestError:
    info = frame.get("error") or {}
    code = info.get("code") or "ARQ_INTERNAL"
    message = info.get("message") or "request failed"
    rid = frame.get("requestId")
    if code == "ARQ_STATE_CONFLICT":
        return StateConflictError(code, message, request_id=rid)
    return RequestError(code, message, request_id=rid, retryable=bool(info.get("retryable")))


class ArqonClient:
    """An ArqonBus connection with rooms, requests and automatic reconnect.

    Args:
        url: the gateway's WebSocket URL. @default ``ws://127.0.0.1:9100/ws``
        token: a JWT, sent as ``Authorization: Bearer``.
        get_token: called (sync or async) for a token before every connect and reconnect, and before the token
            expires (the new one is sent with an ``auth`` frame, without reconnecting). Use it instead of ``token``
            for tokens that expire.
        codec: what the server sends and the client writes: ``"json"`` (text frames) or ``"protobuf"`` (binary
            frames). Payloads look the same to the application either way. @default ``"json"``
        protocol: the wire protocol version to ask for (``?protocol=`` at the upgrade). ``"1.1"`` has the compact
            message frame; messages reach the application the same either way, and a server that only speaks 1.0 is
            read as 1.0 (``welcome.protocol`` says which is in force). @default ``"1.1"``
        reconnect: reconnect after a non-terminal close (see :func:`arqon.should_reconnect`). @default True
        backoff_initial: first reconnect delay in seconds; it doubles per attempt, up to ``backoff_max``, and each
            delay is drawn from [½·d, d] (jitter). @default 0.25
        backoff_max: @default 10.0
        max_reconnect_attempts: give up (status ``closed``) after this many failed attempts in a row; None: never.
        request_timeout: seconds a request waits for its reply (or for the connection to come back) before
            RequestTimeoutError (a ``TimeoutError``, code ``ARQ_REQUEST_TIMEOUT``). @default 10.0
        open_timeout: seconds for the WebSocket handshake and the ``welcome`` frame. @default 10.0
        max_frame_bytes: largest frame accepted from the server. @default 16 MiB
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: Optional[str] = None,
        get_token: Optional[TokenSource] = None,
        codec: Codec = "json",
        protocol: Protocol = "1.1",
        reconnect: bool = True,
        backoff_initial: float = 0.25,
        backoff_max: float = 10.0,
        max_reconnect_attempts: Optional[int] = None,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        max_frame_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if codec not in ("json", "protobuf"):
            raise ValueError('codec must be "json" or "protobuf"')
        if protocol not in codec_module.PROTOCOL_VERSIONS:
            raise ValueError(f'protocol must be one of {", ".join(codec_module.PROTOCOL_VERSIONS)} ({PROTOCOL_UNSUPPORTED})')
        if token is None and get_token is None:
            raise ValueError("ArqonClient needs token= or get_token=")
        self.url = url
        self.codec: Codec = codec
        #: The protocol version asked for; ``welcome.protocol`` is the one in force.
        self.protocol: Protocol = protocol
        self._token = token
        self._get_token = get_token
        self._reconnect = reconnect
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_attempts = max_reconnect_attempts
        self.request_timeout = request_timeout
        self._open_timeout = open_timeout
        self._max_frame_bytes = max_frame_bytes

        self._ws: Optional[ClientConnection] = None
        self._connected = asyncio.Event()
        self._supervisor: Optional[asyncio.Task[None]] = None
        self._refresh_task: Optional[asyncio.Task[None]] = None
        self._closing = False
        self._terminal: Optional[BaseException] = None
        self._pending: Dict[str, asyncio.Future[Dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._rooms: Dict[str, Room] = {}
        # The rooms whose name is a pattern (wildcard subscriptions): they get every matching room's messages.
        self._globs: List[Room] = []
        self._status_handlers: List[Callable[[ClientStatus], Any]] = []
        self._server_handlers: Dict[str, List[Handler]] = {"subscribed": [], "unsubscribed": []}
        self._tasks: Set[asyncio.Future[Any]] = set()
        self.status: ClientStatus = ClientStatus("disconnected")
        #: The server's ``welcome`` on the current (or last) connection.
        self.welcome: Optional[Welcome] = None

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> "ArqonClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def client_id(self) -> str:
        """The server's id for the current connection (changes on reconnect)."""
        return self.welcome.client_id if self.welcome else ""

    @property
    def connected(self) -> bool:
        """Whether a connection is open now (False while reconnecting and after close)."""
        return self._ws is not None

    async def connect(self) -> None:
        """Opens the connection and waits for ``welcome``.

        Raises AuthError (HTTP 401 with the server's code, e.g. ``ARQ_AUTH_INVALID``), ArqonError for other refusals
        (429 ``ARQ_TOO_MANY_CONNECTIONS``, ...), ConnectionClosedError when the server cannot be reached.
        """
        if self._supervisor is not None:
            if self._terminal is not None or self._closing:
                raise ConnectionClosedError(CloseCode.NORMAL, terminal=True, message="the client was closed; create a new one")
            return
        self._set_status(ClientStatus("connecting"))
        try:
            ws, welcome = await self._open()
        except BaseException as err:
            self._set_status(ClientStatus("closed", error=err))
            raise
        self._attach(ws, welcome)
        self._supervisor = asyncio.ensure_future(self._run(ws))

    async def close(self) -> None:
        """Closes the connection with 1000 and stops reconnecting. Message iterators end, handler tasks still running
        are cancelled, pending requests fail with ConnectionClosedError (``ARQ_CLIENT_CLOSED``)."""
        if self._closing:
            if self._supervisor is not None:
                await asyncio.gather(self._supervisor, return_exceptions=True)
            return
        self._closing = True
        if self._refresh_task is not None:
            self._refresh_task.cancel()
        # Handler tasks belong to the client: they end with it (cancelled, not failed by the closing connection).
        current = asyncio.current_task()
        handlers = [t for t in self._tasks if not t.done() and t is not current]
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        ws = self._ws
        supervisor = self._supervisor
        if ws is not None:
            await ws.close(CloseCode.NORMAL, "client closed")
        if supervisor is not None:
            if ws is None:
                supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        self._finish(None, CloseCode.NORMAL, "client closed")

    async def wait_closed(self) -> None:
        """Waits until the client is closed for good (by :meth:`close` or a terminal close); raises the terminal error."""
        if self._supervisor is not None:
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self._terminal is not None:
            raise self._terminal

    def on_status(self, handler: Callable[[ClientStatus], Any]) -> Callable[[], None]:
        """Calls ``handler(ClientStatus)`` on every status change; returns a function that removes it."""
        self._status_handlers.append(handler)
        return lambda: self._status_handlers.remove(handler) if handler in self._status_handlers else None

    def on_server_subscribed(self, handler: Callable[["Room"], Any]) -> Callable[[], None]:
        """Calls ``handler(room)`` when the application's backend subscribed this connection to a room (server API).

        The room is subscribed already; its ``"message"`` callbacks and ``messages()`` iterators get the room's
        messages from then on (add them in a plain, non-async handler to miss none). The subscription ends with the
        connection: after a reconnect the backend subscribes again, the client does not (unless ``room.subscribe()``
        was called, which makes it the client's own). Returns a function that removes the handler.
        """
        return _add_handler(self._server_handlers, "subscribed", handler)

    def on_server_unsubscribed(self, handler: Callable[["Room"], Any]) -> Callable[[], None]:
        """Calls ``handler(room)`` when the application's backend ended a subscription of this connection (after the
        room's own ``"unsubscribed"`` event, reason ``"server"``). Returns a function that removes the handler."""
        return _add_handler(self._server_handlers, "unsubscribed", handler)

    # ---- rooms and commands --------------------------------------------------------------------------------------

    def room(self, name: str) -> "Room":
        """The room called ``name`` (one object per name and client).

        A name with a ``*`` is a pattern (``"orders:*"``, ``"orders:**"``): subscribing to it delivers the messages of
        every room of the tenant that it matches, each with its concrete room in ``Message.room`` (see the
        "Wildcard subscriptions" section of docs/sdk-py.md). Such a room has no presence, state or position.
        """
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = Room(self, name)
            if room._glob is not None:
                self._globs.append(room)
        return room

    async def command(self, name: str, args: Any = None, *, room: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """Runs a server command (``op.<name>.<verb>``) and returns its result (a JSON value, None when it has none).

        Raises CommandError with the server's code (``NOT_FOUND``, ``VALIDATION_ERROR``, ``AUTHORIZATION_ERROR``, ...).
        ``timeout`` overrides ``request_timeout`` for this call (slow commands such as webhooks).
        """
        frame: Dict[str, Any] = {"type": "command", "command": name}
        if args is not None:
            frame["args"] = args
        if room is not None:
            frame["room"] = room
        reply = await self._request(frame, timeout=timeout)
        if reply.get("status") == "error" or (reply["type"] == "response" and "error" in reply):
            info = reply.get("error") or {}
            raise CommandError(
                info.get("code", "INTERNAL_ERROR"), info.get("message", "command failed"), command=name, request_id=reply.get("requestId")
            )
        return reply.get("payload")

    async def rpc(self, method: str, data: Any = None, *, timeout: Optional[float] = None) -> Any:
        """Asks the application backend to run ``method`` (the server's rpc proxy hook); returns the ``data`` it answered.

        Raises RequestError with the server's code: ``ARQ_PROXY_DENIED`` (the backend refused), ``ARQ_PROXY_UNAVAILABLE``
        (it failed or timed out; retryable), ``ARQ_FEATURE_DISABLED`` (the server has no rpc hook).
        """
        frame: Dict[str, Any] = {"type": "rpc", "method": method}
        if data is not None:
            frame["data"] = data
        reply = await self._request(frame, timeout=timeout)
        return reply.get("data")

    async def ping(self) -> float:
        """An application-level round trip (``ping`` → ``pong``); returns its duration in seconds."""
        started = time.monotonic()
        await self._request({"type": "ping"})
        return time.monotonic() - started

    # ---- connection internals -------------------------------------------------------------------------------------

    def _ws_url(self) -> str:
        # 1.0 is every server's default: asking for it would only lengthen the URL (older servers ignore the query).
        wants_protocol = self.protocol != codec_module.DEFAULT_PROTOCOL_VERSION
        if self.codec != "protobuf" and not wants_protocol:
            return self.url
        parts = urlsplit(self.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if self.codec == "protobuf":
            query = [(k, v) for k, v in query if k != "codec"] + [("codec", "protobuf")]
        if wants_protocol and not any(k == "protocol" for k, _ in query):
            query.append(("protocol", self.protocol))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _fetch_token(self) -> str:
        if self._get_token is not None:
            value = self._get_token()
            if inspect.isawaitable(value):
                value = await value
            if not isinstance(value, str) or not value:
                raise AuthError("ARQ_AUTH_MISSING", "get_token returned no token")
            self._token = value
            return value
        assert self._token is not None
        return self._token

    async def _open(self) -> Tuple[ClientConnection, Welcome]:
        token = await self._fetch_token()
        url = self._ws_url()
        try:
            ws = await ws_connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                user_agent_header=f"arqon-sdk-py/{SDK_VERSION}",
                compression=None,
                open_timeout=self._open_timeout,
                max_size=self._max_frame_bytes,
            )
        except InvalidStatus as err:
            raise _http_refusal(err) from None
        except InvalidURI as err:
            raise ValueError(f"not a WebSocket URL: {url}") from err
        except (OSError, asyncio.TimeoutError, InvalidHandshake, ConnectionClosed) as err:
            raise ConnectionClosedError(CloseCode.ABNORMAL, message=f"could not connect to {url}: {err}") from err
        try:
            data = await asyncio.wait_for(ws.recv(), self._open_timeout)
            frame = codec.decode_frame(data, max_bytes=self._max_frame_bytes)
        except ConnectionClosed:
            code, reason = _close_info(ws)
            raise _close_error(code, reason, terminal=not should_reconnect(code)) from None
        except (asyncio.TimeoutError, FrameDecodeError) as err:
            await ws.close(CloseCode.PROTOCOL_ERROR, "no welcome")
            raise ConnectionClosedError(CloseCode.PROTOCOL_ERROR, message=f"the server sent no welcome: {err!r}") from None
        if frame["type"] != "welcome":
            await ws.close(CloseCode.PROTOCOL_ERROR, "no welcome")
            raise ArqonError("ARQ_FRAME_UNEXPECTED", f'expected "welcome" first, got "{frame["type"]}"')
        welcome = Welcome(
            client_id=frame.get("clientId", ""),
            version=frame.get("version", ""),
            protocol=frame.get("protocol", ""),
            limits=dict(frame.get("limits", {})),
            expires_at=frame.get("expiresAt", 0),
        )
        return ws, welcome

    def _attach(self, ws: ClientConnection, welcome: Welcome) -> None:
        self._ws = ws
        self.welcome = welcome
        self._connected.set()
        self._schedule_refresh(welcome.expires_at)
        self._set_status(ClientStatus("connected"))

    def _schedule_refresh(self, expires_at: int) -> None:
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        if self._get_token is None or not expires_at:
            return
        loop = asyncio.get_running_loop()
        delay = max(1.0, (expires_at / 1000.0 - time.time()) - 30.0)
        self._refresh_task = loop.create_task(self._refresh_after(delay))

    async def _refresh_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            token = await self._fetch_token()
            reply = await self._request({"type": "auth", "token": token})
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the server closes with 4004 when the old token expires; reconnect fetches anew
            self._report(err, "token refresh failed")
            return
        expires_at = reply.get("expiresAt", 0)
        if self.welcome is not None:
            self.welcome = replace(self.welcome, expires_at=expires_at)
        self._schedule_refresh(expires_at)

    async def _run(self, ws: ClientConnection) -> None:
        """Reads the current connection; after a close, reconnects (or stops) as the close code says."""
        try:
            while True:
                code, reason = await self._read(ws)
                self._detach(code, reason)
                if self._closing:
                    return
                if not self._reconnect or not should_reconnect(code):
                    self._finish(_close_error(code, reason, terminal=True), code, reason)
                    return
                next_ws = await self._reconnect_loop(code)
                if next_ws is None:
                    return
                ws = next_ws
        except asyncio.CancelledError:
            if not self._closing:
                raise
        except Exception as err:  # a bug in this client: end it visibly rather than hang in "reconnecting"
            self._report(err, "the connection supervisor failed")
            self._finish(err, CloseCode.INTERNAL_ERROR, "client error")

    async def _reconnect_loop(self, code: int) -> Optional[ClientConnection]:
        attempt = 0
        auth_retried = False
        floor = 1.0 if code == CloseCode.RATE_LIMIT_ABUSE else 0.0
        while not self._closing:
            attempt += 1
            if self._max_attempts is not None and attempt > self._max_attempts:
                self._finish(
                    ConnectionClosedError(code, terminal=True, message=f"gave up after {self._max_attempts} reconnect attempts"),
                    code,
                    "",
                )
                return None
            base = min(self._backoff_max, max(floor, self._backoff_initial * (2 ** (attempt - 1))))
            delay = random.uniform(base / 2, base)
            self._set_status(ClientStatus("reconnecting", attempt=attempt, delay=delay))
            await asyncio.sleep(delay)
            if self._closing:
                return None
            try:
                ws, welcome = await self._open()
            except AuthError as err:
                if self._get_token is not None and not auth_retried:
                    auth_retried = True  # one more try with a freshly fetched token
                    continue
                self._finish(err, CloseCode.AUTH_INVALID, err.message)
                return None
            except ArqonError as err:
                if isinstance(err, ConnectionClosedError) and err.terminal:
                    self._finish(err, err.close_code, err.reason)
                    return None
                continue  # refused for now (429, 503, unreachable): try again later
            except Exception as err:  # e.g. get_token failed: say so, and try again after the next delay
                self._report(err, "a reconnect attempt failed")
                continue
            if self._closing:
                await ws.close(CloseCode.NORMAL, "client closed")
                return None
            self._attach(ws, welcome)
            self._spawn(self._resubscribe_all())
            return ws
        return None

    async def _read(self, ws: ClientConnection) -> Tuple[int, str]:
        try:
            async for data in ws:
                try:
                    frame = codec.decode_frame(data, max_bytes=self._max_frame_bytes)
                except FrameDecodeError as err:
                    self._report(err, "the server sent a frame this client cannot decode")
                    continue
                self._dispatch(frame)
        except ConnectionClosed:
            pass
        return _close_info(ws)

    def _detach(self, code: int, reason: str) -> None:
        self._ws = None
        self._connected.clear()
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            self._refresh_task = None
        error = _close_error(code, reason, terminal=False)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
        self._pending.clear()
        for room in self._rooms.values():
            room._connection_lost()
        self._set_status(ClientStatus("disconnected", code=code, reason=reason))

    def _finish(self, error: Optional[BaseException], code: int, reason: str) -> None:
        """The client is done for good: wake everything that waits."""
        if self.status.type == "closed":
            return
        self._closing = True
        self._terminal = error
        self._connected.set()  # waiters wake up and see the terminal state
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error or ConnectionClosedError(code, reason, terminal=True))
        self._pending.clear()
        for room in self._rooms.values():
            room._end(error)
        self._set_status(ClientStatus("closed", code=code, reason=reason, error=error))

    async def _resubscribe_all(self) -> None:
        for room in list(self._rooms.values()):
            if room._wanted and not room.subscribed:
                try:
                    await room._send_subscribe(resubscribe=True)
                except ConnectionClosedError:
                    return  # the next reconnect resubscribes again
                except ArqonError as err:
                    room._wanted = False
                    room._emit("error", err)
                    if not room._handlers["error"]:
                        self._report(err, f'resubscribing to "{room.name}" failed')

    # ---- frames ------------------------------------------------------------------------------------------------

    def _speaks_11(self) -> bool:
        """Whether the current connection's welcome put protocol 1.1 in force."""
        return self.welcome is not None and self.welcome.protocol == "1.1"

    async def _send(self, frame: Mapping[str, Any]) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionClosedError(CloseCode.ABNORMAL, message="not connected")
        data: Union[str, bytes] = codec.encode_proto(frame) if self.codec == "protobuf" else codec.encode_json(frame)
        try:
            await ws.send(data)
        except ConnectionClosed:
            code, reason = _close_info(ws)
            raise _close_error(code, reason, terminal=False) from None

    async def _ready(self) -> None:
        if self._terminal is not None:
            raise self._terminal
        if self._closing:
            raise ConnectionClosedError(CloseCode.NORMAL, "client closed", terminal=True)
        if not self._connected.is_set():
            if self._supervisor is None:
                raise ConnectionClosedError(CloseCode.ABNORMAL, message="not connected: call connect() or use async with")
            try:
                await asyncio.wait_for(self._connected.wait(), self.request_timeout)
            except asyncio.TimeoutError:
                raise RequestTimeoutError(f"not reconnected within {self.request_timeout}s") from None
            if self._terminal is not None:
                raise self._terminal
            if self._closing:
                raise ConnectionClosedError(CloseCode.NORMAL, "client closed", terminal=True)

    async def _request(self, frame: Dict[str, Any], *, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Sends a request and waits for the frame that answers it; an ``error`` frame raises RequestError."""
        wait = self.request_timeout if timeout is None else timeout
        await self._ready()
        rid = f"py{next(self._ids)}"
        frame["requestId"] = rid
        fut: asyncio.Future[Dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._send(frame)
            try:
                return await asyncio.wait_for(fut, wait)
            except asyncio.TimeoutError:
                raise RequestTimeoutError(f'no reply to "{frame["type"]}" within {wait}s') from None
        finally:
            self._pending.pop(rid, None)

    def _dispatch(self, frame: Dict[str, Any]) -> None:
        kind = frame["type"]
        rid = frame.get("requestId")
        # A subscription the server made or ended on its own (docs/protocol.md, "Server-side subscriptions").
        server = not rid and frame.get("reason") == "server" and kind in ("subscribed", "unsubscribed") and "room" in frame
        room = self.room(frame["room"]) if server and kind == "subscribed" else self._rooms.get(frame.get("room", ""))
        if room is not None:
            if kind == "message":
                # A room object that holds no subscription (one the pattern of a wildcard subscription matches) gets
                # nothing: the message came for the pattern.
                if room._wanted or room.subscribed:
                    room._on_message(frame)
            elif kind == "subscribed":
                room._on_subscribed(frame)
            elif kind in ("presence_join", "presence_leave", "presence_diff"):
                room._on_presence(frame)
            elif kind == "state_changed":
                room._on_state_changed(frame)
            elif kind == "unsubscribed" and not rid:
                room._on_ended(frame.get("reason", ""))
            if server:
                for handler in list(self._server_handlers[kind]):
                    self._call(handler, room)
        if kind == "message" and self._globs:
            self._to_globs(frame, room)
        if rid:
            fut = self._pending.pop(rid, None)
            if fut is not None and not fut.done():
                if kind == "error":
                    fut.set_exception(_request_error(frame))
                else:
                    fut.set_result(frame)
        elif kind == "error":
            info = frame.get("error") or {}
            self._report(RequestError(info.get("code", "ARQ_INTERNAL"), info.get("message", "")), "the server reported an error")

    def _to_globs(self, frame: Dict[str, Any], exact: Optional["Room"]) -> None:
        """Hands a message to every wildcard subscription whose pattern matches its (concrete) room."""
        name = frame.get("room", "")
        globs = [g for g in self._globs if g._glob is not None and g._glob.fullmatch(name)]
        if not globs:
            return
        if self._speaks_11() and "epoch" not in frame:
            # A message for a pattern always carries its epoch; one for the room's own subscription (the server
            # delivers each message once per connection) carries it only when it changed: that room knows it.
            epoch = exact._epoch if exact is not None else ""
            frame = codec.expand_message(frame, epoch)
        elif self._speaks_11():
            frame = codec.expand_message(frame, None)
        for g in globs:
            g._on_glob_message(frame)

    # ---- callbacks ---------------------------------------------------------------------------------------------

    def _set_status(self, status: ClientStatus) -> None:
        self.status = status
        for handler in list(self._status_handlers):
            self._call(handler, status)

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._report(task.exception(), "a handler failed")

    def _call(self, handler: Handler, *args: Any) -> None:
        """Runs an application callback; a coroutine runs as its own task so the reader never blocks on it."""
        try:
            result = handler(*args)
        except Exception as err:
            self._report(err, "a handler failed")
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _report(self, error: Optional[BaseException], message: str) -> None:
        asyncio.get_running_loop().call_exception_handler({"message": f"arqon: {message}", "exception": error, "client": self})


def _close_info(ws: ClientConnection) -> Tuple[int, str]:
    # The sans-I/O protocol object carries the close code in every supported websockets version (14-17).
    protocol = ws.protocol
    code = protocol.close_code
    return (int(code) if code is not None else int(CloseCode.ABNORMAL)), (protocol.close_reason or "")


def _close_error(code: int, reason: str, *, terminal: bool) -> ArqonError:
    if code == CloseCode.AUTH_INVALID:
        return AuthError("ARQ_AUTH_INVALID", reason or "authentication invalid")
    return ConnectionClosedError(code, reason, terminal=terminal)


def _http_refusal(err: InvalidStatus) -> ArqonError:
    response = err.response
    status = response.status_code
    code, message = "ARQ_AUTH_INVALID" if status == 401 else "ARQ_INTERNAL", f"HTTP {status}"
    try:
        body = json.loads(bytes(response.body or b"").decode("utf-8"))
        info = body.get("error", {}) if isinstance(body, dict) else {}
        code = info.get("code", code)
        message = info.get("message", message)
    except (ValueError, AttributeError):
        pass
    if status == 401:
        return AuthError(code, message, status=status)
    error = ArqonError(code, message, detail={"status": status})
    return error


def _compile_pattern(pattern: str) -> "re.Pattern[str]":
    """A room pattern (the capability syntax: ``*`` any run of characters within one segment, segments separated by
    ``:``, ``/`` or ``.``; ``**`` anything) as an anchored regular expression."""
    parts = re.split(r"(\*\*?)", pattern)
    body = "".join(".*" if p == "**" else "[^:/.]*" if p == "*" else re.escape(p) for p in parts)
    return re.compile(body)  # used with fullmatch


class Room:
    """A room seen through one client: subscribe, publish, presence and state. Get it with ``client.room(name)``.

    A room whose name has a ``*`` is a wildcard subscription (``client.room("orders:*")``): see ``ArqonClient.room``.
    """

    def __init__(self, client: ArqonClient, name: str) -> None:
        self.client = client
        self.name = name
        # A wildcard subscription's pattern (the name has a `*`) as a regular expression; None for a plain room.
        self._glob: Optional[re.Pattern[str]] = _compile_pattern(name) if "*" in name else None
        # A wildcard subscription's last delivered position per concrete room (its recovery starts there).
        self._seen: Dict[str, Position] = {}
        # Concrete rooms a wildcard subscription is catching up with after a reconnect: their live messages wait here.
        self._held: Dict[str, List[Dict[str, Any]]] = {}
        #: Who is in the room: ``members()``, ``set_meta()``, ``current``, join/leave callbacks.
        self.presence = RoomPresence(self)
        #: The room's shared state map: ``get()``, ``set()``, ``delete()``, ``current``, change callbacks.
        self.state = RoomState(self)
        self.subscribed = False
        #: The last position seen (updated by subscribe and by every message); sent as ``since`` on resubscribe.
        self.position: Optional[Position] = None
        #: The last (re)subscription's result; its ``recovered`` says whether a resubscription missed nothing.
        self.last_subscribed: Optional[Subscribed] = None
        self._wanted = False
        self._delta = False
        self._meta: Any = None
        self._has_meta = False
        self._resubscribing = False
        # delta=True: the last full payload (bytes, binary?) that the next delta applies to; None after a subscribe.
        self._delta_base: Optional[Tuple[bytes, bool]] = None
        # A delta did not apply: messages are ignored until the resubscription from the last good position answers.
        self._resyncing = False
        # The room's epoch as the server last told this subscription (its subscribed reply, or a message carrying
        # one): protocol 1.1 messages carry their epoch only when it changes, and get this one otherwise.
        self._epoch = ""
        self._members: Dict[str, Member] = {}
        self._state: Dict[str, StateEntry] = {}
        self._queues: Set[asyncio.Queue[Any]] = set()
        self._handlers: Dict[str, List[Handler]] = {k: [] for k in ("message", "subscribed", "unsubscribed", "error")}

    def __repr__(self) -> str:
        return f"Room({self.name!r}, subscribed={self.subscribed})"

    # ---- events ------------------------------------------------------------------------------------------------

    def on(self, event: str, handler: Handler) -> Callable[[], None]:
        """Adds a callback (sync or async) and returns a function that removes it. Events:

        ``"message"`` (Message), ``"subscribed"`` (Subscribed, also after every automatic resubscription: check
        ``recovered``), ``"unsubscribed"`` (reason, when the server ended the subscription), ``"error"`` (ArqonError,
        e.g. a resubscription refused). Presence and state events are on ``room.presence`` and ``room.state``.
        """
        return _add_handler(self._handlers, event, handler)

    def on_join(self, handler: Callable[[Member], Any]) -> Callable[[], None]:
        """Shortcut for ``room.presence.on("join", handler)``."""
        return self.presence.on("join", handler)

    def on_leave(self, handler: Callable[[Member], Any]) -> Callable[[], None]:
        """Shortcut for ``room.presence.on("leave", handler)``."""
        return self.presence.on("leave", handler)

    def _emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers[event]):
            self.client._call(handler, *args)

    # ---- subscribe ---------------------------------------------------------------------------------------------

    async def subscribe(
        self,
        handler: Optional[Callable[[Message], Any]] = None,
        *,
        since: Optional[Position] = None,
        delta: bool = False,
        meta: Any = None,
    ) -> Subscribed:
        """Joins the room; ``handler`` (sync or async) gets every message. Returns the Subscribed result.

        ``since``: recover the messages after this position first (``recovered`` in the result says whether every
        one of them comes). ``delta``: let the server send each message as a fossil delta against the previous one
        when that is smaller; the client rebuilds the full payload, so handlers never see deltas (one that does not
        apply fires an ``"error"`` event with ``ARQ_DELTA_INVALID`` and the room resubscribes from its last good
        position). ``meta``: initial presence metadata (a JSON value).
        After a reconnect the client resubscribes by itself, passing the last position it saw.
        """
        if handler is not None:
            self._handlers["message"].append(handler)
        if meta is not None:
            self._meta, self._has_meta = meta, True
        self._delta = delta or self._delta
        # Also for a room the server API subscribed: it becomes the client's own, renewed after a reconnect.
        self._wanted = True
        if self.subscribed and since is None and self.last_subscribed is not None and meta is None:
            return self.last_subscribed
        if since is not None and self._glob is None:
            self.position = since
        try:
            return await self._send_subscribe(resubscribe=False, explicit_since=since is not None, since=since)
        except BaseException:
            if not self.subscribed:
                self._wanted = False
                if handler is not None and handler in self._handlers["message"]:
                    self._handlers["message"].remove(handler)
            raise

    async def _send_subscribe(self, *, resubscribe: bool, explicit_since: bool = False, since: Optional[Position] = None) -> Subscribed:
        frame: Dict[str, Any] = {"type": "subscribe", "room": self.name}
        if self._glob is not None:
            # A pattern keeps no position (it recovers per concrete room after the reply); an explicit since is sent
            # as it is, for the server to refuse (ARQ_VALIDATION_ERROR).
            if since is not None:
                frame["since"] = since.to_frame()
        elif self.position is not None and (resubscribe or explicit_since):
            frame["since"] = self.position.to_frame()
        if self._delta:
            frame["delta"] = True
        if self._has_meta:
            frame["info"] = {"info": self._meta}
        self._resubscribing = resubscribe
        await self.client._request(frame)
        assert self.last_subscribed is not None
        return self.last_subscribed

    def _on_subscribed(self, frame: Mapping[str, Any]) -> None:
        recovered = frame.get("recovered")
        epoch = frame.get("epoch", "")
        self._epoch = epoch
        offset = frame.get("offset", 0)
        server = not frame.get("requestId") and frame.get("reason") == "server"
        # After a successful recovery the missed messages follow and move the position; otherwise start from here.
        if recovered is not True and self._glob is None:
            self.position = Position(offset, epoch) if epoch else None
        self.subscribed = True
        self._delta_base = None  # the server starts every (re)subscription with a full payload
        self._resyncing = False
        self._members = {m.get("clientId", ""): _member(m) for m in frame.get("members", [])}
        self._state = {e["key"]: _entry(e) for e in frame.get("state", [])}
        result = Subscribed(
            room=self.name,
            offset=offset,
            epoch=epoch,
            recovered=recovered,
            reason="" if server else frame.get("reason", ""),
            members=list(self._members.values()),
            state=dict(self._state),
            resubscribe=False if server else self._resubscribing,
            server=server,
        )
        self.last_subscribed = result
        self._emit("subscribed", result)
        if self._glob is not None and result.resubscribe:
            # A wildcard subscription recovers per concrete room: the history after the last message it delivered of
            # each. Their live messages wait from now (this reply comes before any of them) until that is done.
            for name, position in list(self._seen.items()):
                held: List[Dict[str, Any]] = []
                self._held[name] = held
                self.client._spawn(self._catch_up(name, position, held))
        # Protocol 1.1 sends recovered messages in the reply (the rest, if any, follow as message frames): each is
        # delivered as if it had come in its own frame, with the reply's epoch where it leaves its own out.
        p11 = self.client._speaks_11()
        for m in frame.get("messages", []):
            if "room" not in m:
                m = {**m, "room": self.name}
            self._deliver(codec.expand_message(m, epoch) if p11 else m)

    async def unsubscribe(self) -> None:
        """Leaves the room (presence leave follows) and drops the message handlers."""
        self._wanted = False
        self._handlers["message"].clear()
        was = self.subscribed
        self.subscribed = False
        for queue in self._queues:
            queue.put_nowait(_END)
        if was and self.client.connected:
            await self.client._request({"type": "unsubscribe", "room": self.name})

    async def messages(self, *, since: Optional[Position] = None, delta: bool = False) -> AsyncIterator[Message]:
        """Iterates over the room's messages (subscribing first when needed). The iteration ends when the client or
        the subscription is closed, and raises the error that ended the client when it failed for good."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues.add(queue)
        try:
            if not self.subscribed or since is not None:
                await self.subscribe(since=since, delta=delta)
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._queues.discard(queue)

    def _on_message(self, frame: Mapping[str, Any]) -> None:
        # The server counts an epoch as told once it wrote it, whether or not this room still reads messages.
        if "epoch" in frame:
            self._epoch = frame["epoch"]
        if self.client._speaks_11():
            frame = codec.expand_message(frame, self._epoch)
        self._deliver(frame)

    def _on_glob_message(self, frame: Dict[str, Any]) -> None:
        """A (1.0-form) message of a room this wildcard subscription's pattern matches."""
        if not (self._wanted or self.subscribed):
            return
        held = self._held.get(frame.get("room", ""))
        if held is not None:
            held.append(frame)
        else:
            self._deliver(frame)

    async def _catch_up(self, room: str, position: Position, held: List[Dict[str, Any]]) -> None:
        """Reads ``room``'s history after ``position`` page by page, then lets the live messages held meanwhile through."""
        lost = False
        try:
            start = position.offset + 1
            while self._held.get(room) is held:
                reply = await self.client._request({"type": "history", "room": room, "history": {"fromOffset": start}})
                epoch = reply.get("epoch", "")
                if epoch != position.epoch:
                    break  # another epoch: the room's history was lost, there is nothing to recover from
                p11 = self.client._speaks_11()
                messages = reply.get("messages", [])
                for m in messages:
                    m = {**m, "room": room}
                    self._deliver(codec.expand_message(m, epoch) if p11 else m)
                last = messages[-1].get("offset", 0) if messages else 0
                if last == 0 or last >= reply.get("offset", 0) or last < start:
                    break
                start = last + 1
        except ConnectionClosedError:
            # Disconnected again: the next resubscription catches up from what was delivered; what was held came on
            # the dead connection and is read again then (delivering it now could skip a gap).
            lost = True
        except ArqonError as err:
            # Refused (e.g. no history capability) or timed out: the live messages go on.
            self._emit("error", err)
        if self._held.get(room) is not held:
            return  # a later resubscription took over
        del self._held[room]
        if lost:
            return
        for f in held:
            self._deliver(f)

    def _deliver(self, frame: Mapping[str, Any]) -> None:
        """Delivers a (1.0-form) message frame: duplicates dropped, deltas applied, the position moved."""
        if self._glob is not None:
            self._deliver_glob(frame)
            return
        if self._resyncing:
            return
        offset, epoch = frame.get("offset", 0), frame.get("epoch", "")
        pos = self.position
        if offset and epoch and pos is not None and pos.epoch == epoch and offset <= pos.offset:
            return  # already delivered (at-most-once across a recovery)
        message = _message(frame, self.name)
        if message.delta:
            rebuilt = self._apply_delta(message)
            if rebuilt is None:
                return
            message = rebuilt
        elif self._delta:
            raw = message.payload if message.binary else codec.json_text(message.payload).encode("utf-8")
            self._delta_base = (raw, message.binary)
        if offset and epoch:
            self.position = Position(offset, epoch)
        for queue in self._queues:
            queue.put_nowait(message)
        self._emit("message", message)

    def _deliver_glob(self, frame: Mapping[str, Any]) -> None:
        """A wildcard subscription's delivery: duplicates dropped per concrete room, that room's position moved."""
        room = frame.get("room", "")
        offset, epoch = frame.get("offset", 0), frame.get("epoch", "")
        seen = self._seen.get(room)
        if offset and epoch and seen is not None and seen.epoch == epoch and offset <= seen.offset:
            return  # already delivered
        message = _message(frame, room)
        if offset and epoch:
            self._seen[room] = Position(offset, epoch)
        for queue in self._queues:
            queue.put_nowait(message)
        self._emit("message", message)

    def _apply_delta(self, message: Message) -> Optional[Message]:
        """The message with its full payload rebuilt from the previous one; None (and a resync) when that fails."""
        base = self._delta_base
        try:
            if base is None:
                raise DeltaError("no previous payload to apply the delta to")
            full = apply_delta(base[0], message.payload)
            payload: Any = full if base[1] else json.loads(full.decode("utf-8"))
        except (DeltaError, ValueError) as err:
            self._resyncing = True
            error = ArqonError("ARQ_DELTA_INVALID", f'a delta message in "{self.name}" could not be applied: {err}')
            self._emit("error", error)
            self.client._spawn(self._resync())
            return None
        self._delta_base = (full, base[1])
        return replace(message, payload=payload, binary=base[1], delta=False)

    async def _resync(self) -> None:
        """Resubscribes from the last good position: the server replays what follows, the first one in full."""
        try:
            await self._send_subscribe(resubscribe=True)
        except ConnectionClosedError:
            return  # the reconnect resubscribes
        except ArqonError as err:
            self._resyncing = False
            self._emit("error", err)

    def _on_ended(self, reason: str) -> None:
        self.subscribed = False
        self._wanted = False
        for queue in self._queues:
            queue.put_nowait(_END)
        self._emit("unsubscribed", reason)

    def _connection_lost(self) -> None:
        self.subscribed = False
        self._resyncing = False

    def _end(self, error: Optional[BaseException]) -> None:
        self.subscribed = False
        for queue in self._queues:
            queue.put_nowait(_END if error is None else error)

    # ---- publish and history -----------------------------------------------------------------------------------

    async def publish(
        self,
        payload: Any,
        *,
        headers: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
        echo: bool = False,
    ) -> Ack:
        """Publishes a JSON value (or ``bytes``, sent as a binary payload) and returns the ack (id, offset, epoch).

        ``idempotency_key``: the server delivers a message with the same key once within its dedupe window.
        ``echo``: deliver the message to this client's own subscription too.
        """
        frame: Dict[str, Any] = {"type": "publish", "room": self.name}
        if isinstance(payload, (bytes, bytearray, memoryview)):
            frame["payload"] = bytes(payload)
            frame["payloadFormat"] = "binary"
        else:
            frame["payload"] = payload
        if headers:
            frame["headers"] = dict(headers)
        if idempotency_key:
            frame["idempotencyKey"] = idempotency_key
        if echo:
            frame["echo"] = True
        reply = await self.client._request(frame)
        return Ack(
            id=reply.get("id", ""),
            offset=reply.get("offset", 0),
            epoch=reply.get("epoch", ""),
            room=reply.get("room", self.name),
            duplicate=reply.get("duplicate", False) is True,
        )

    async def history(
        self,
        *,
        from_offset: int = 0,
        to_offset: int = 0,
        limit: int = 0,
        reverse: bool = False,
        twist_id: str = "",
    ) -> List[Message]:
        """Reads stored messages of the room (offsets inclusive; ``reverse`` pages backwards)."""
        query: Dict[str, Any] = {
            "fromOffset": from_offset,
            "toOffset": to_offset,
            "limit": limit,
            "reverse": reverse,
            "twistId": twist_id,
        }
        reply = await self.client._request({"type": "history", "room": self.name, "history": query})
        p11 = self.client._speaks_11()
        page_epoch = reply.get("epoch", "")
        return [_message(codec.expand_message(m, page_epoch) if p11 else m, self.name) for m in reply.get("messages", [])]

    # ---- presence and state shortcuts ---------------------------------------------------------------------------

    async def members(self) -> List[Member]:
        """Shortcut for ``room.presence.members()``."""
        return await self.presence.members()

    async def set_meta(self, info: Any) -> None:
        """Shortcut for ``room.presence.set_meta(info)``."""
        await self.presence.set_meta(info)

    def _on_presence(self, frame: Mapping[str, Any]) -> None:
        kind = frame["type"]
        if kind == "presence_diff":
            joined, left = frame.get("joined", []), frame.get("left", [])
        elif kind == "presence_join":
            joined, left = frame.get("members", []), []
        else:
            joined, left = [], frame.get("members", [])
        for m in left:
            member = _member(m)
            self._members.pop(member.client_id, None)
            self.presence._emit("leave", member)
        for m in joined:
            member = _member(m)
            self._members[member.client_id] = member
            self.presence._emit("join", member)

    def _on_state_changed(self, frame: Mapping[str, Any]) -> None:
        for e in frame.get("state", []):
            entry = _entry(e)
            if entry.deleted:
                self._state.pop(entry.key, None)
            else:
                self._state[entry.key] = entry
            self.state._emit("change", entry)


def _add_handler(handlers: Dict[str, List[Handler]], event: str, handler: Handler) -> Callable[[], None]:
    if event not in handlers:
        raise ValueError(f"unknown event {event!r}; one of {sorted(handlers)}")
    listeners = handlers[event]
    listeners.append(handler)
    return lambda: listeners.remove(handler) if handler in listeners else None


class RoomPresence:
    """Who is in a room. Get it as ``room.presence``."""

    def __init__(self, room: Room) -> None:
        self._room = room
        self._handlers: Dict[str, List[Handler]] = {"join": [], "leave": []}

    async def members(self) -> List[Member]:
        """Who is in the room now (asks the server)."""
        reply = await self._room.client._request({"type": "presence_list", "room": self._room.name})
        return [_member(m) for m in reply.get("members", [])]

    @property
    def current(self) -> List[Member]:
        """The member list as this client last saw it (from subscribe and join/leave events), without asking."""
        return list(self._room._members.values())

    async def set_meta(self, info: Any) -> None:
        """Replaces this connection's presence metadata (a JSON value) in the room; kept across reconnects."""
        self._room._meta, self._room._has_meta = info, True
        await self._room.client._request({"type": "presence_set", "room": self._room.name, "info": {"info": info}})

    def on(self, event: str, handler: Callable[[Member], Any]) -> Callable[[], None]:
        """``"join"`` / ``"leave"``: called (sync or async) with the Member; returns a function that removes it."""
        return _add_handler(self._handlers, event, handler)

    def _emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers[event]):
            self._room.client._call(handler, *args)


class RoomState:
    """A room's shared key → JSON value map, versioned per key. Get it as ``room.state``."""

    def __init__(self, room: Room) -> None:
        self._room = room
        self._handlers: Dict[str, List[Handler]] = {"change": []}

    async def get(self) -> Dict[str, StateEntry]:
        """The room's state map now (asks the server)."""
        reply = await self._room.client._request({"type": "state_get", "room": self._room.name})
        return {e["key"]: _entry(e) for e in reply.get("state", [])}

    async def set(self, key: str, value: Any, *, if_version: Optional[int] = None) -> StateEntry:
        """Writes ``key``; with ``if_version`` only if the key is at that version (0: only if it does not exist).
        Returns the stored entry (with its new version). Raises StateConflictError (``ARQ_STATE_CONFLICT``)."""
        entry: Dict[str, Any] = {"key": key, "value": value}
        if if_version is not None:
            entry["ifVersion"] = if_version
        return await self._write(entry)

    async def delete(self, key: str, *, if_version: Optional[int] = None) -> StateEntry:
        """Deletes ``key`` (compare-and-set with ``if_version``)."""
        entry: Dict[str, Any] = {"key": key, "deleted": True}
        if if_version is not None:
            entry["ifVersion"] = if_version
        return await self._write(entry)

    async def _write(self, entry: Dict[str, Any]) -> StateEntry:
        reply = await self._room.client._request({"type": "state_set", "room": self._room.name, "state": [entry]})
        stored = reply.get("state", [])
        return _entry(stored[0]) if stored else StateEntry(key=entry["key"])

    @property
    def current(self) -> Dict[str, StateEntry]:
        """The state as this client last saw it (from subscribe and change events), without asking."""
        return dict(self._room._state)

    def on(self, event: str, handler: Callable[[StateEntry], Any]) -> Callable[[], None]:
        """``"change"``: called (sync or async) with each changed StateEntry of a subscribed room (``deleted`` marks a
        delete), including this client's own writes. Returns a function that removes it."""
        return _add_handler(self._handlers, event, handler)

    def on_change(self, handler: Callable[[StateEntry], Any]) -> Callable[[], None]:
        """Shortcut for ``on("change", handler)``."""
        return self.on("change", handler)

    def _emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers[event]):
            self._room.client._call(handler, *args)
