"""A client of the ArqonBus server API (``/api/v1``) for application backends and operators, over HTTP with httpx.

httpx is an optional dependency: ``pip install "arqon[server]"``. Importing this module does not need it; creating an
:class:`ArqonServerClient` does.

```python
from arqon.server import ArqonServerClient

async with ArqonServerClient("http://127.0.0.1:9100", token=server_token, tenant="acme") as api:
    await api.publish("lobby", {"text": "hello from the backend"})
    async for message in api.history_messages("lobby", from_offset=1):
        print(message["offset"], message["payload"])
```

The methods are named after the operations of ``SERVER_OPERATIONS`` (the same as ``@arqon/sdk/server`` and
``arqon api``, in snake_case). Every refusal raises :class:`arqon.errors.ArqonApiError`.
"""

from __future__ import annotations

import base64
import email.utils
import json
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, AsyncIterator, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Type, TypedDict, Union, cast
from urllib.parse import quote, urlsplit

from .errors import CONNECTION_CLOSED, REQUEST_TIMEOUT, ArqonApiError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ArqonServerClient",
    "ArqonApiError",
    "SERVER_OPERATIONS",
    "PublishResult",
    "HistoryMessage",
    "HistoryPage",
    "HistoryPosition",
    "RoomInfo",
    "PresenceMember",
    "PresenceStats",
    "StateEntryView",
    "StateWrite",
    "Closed",
]

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]

#: Every route of the server API by operation name: (method, path). ``:tenant`` is the client's tenant unless a call
#: names one. The names are the TypeScript client's in snake_case.
SERVER_OPERATIONS: Dict[str, Tuple[Method, str]] = {
    "list_tenants": ("GET", "/api/v1/tenants"),
    "create_tenant": ("POST", "/api/v1/tenants"),
    "show_tenant": ("GET", "/api/v1/tenants/:tenant"),
    "set_tenant": ("PATCH", "/api/v1/tenants/:tenant"),
    "delete_tenant": ("DELETE", "/api/v1/tenants/:tenant"),
    "disable_tenant": ("POST", "/api/v1/tenants/:tenant/disable"),
    "enable_tenant": ("POST", "/api/v1/tenants/:tenant/enable"),
    "kick": ("POST", "/api/v1/tenants/:tenant/kick"),
    "revocations": ("GET", "/api/v1/tenants/:tenant/revocations"),
    "revoke": ("POST", "/api/v1/tenants/:tenant/revocations"),
    "unrevoke": ("DELETE", "/api/v1/tenants/:tenant/revocations/:id"),
    "audit": ("GET", "/api/v1/tenants/:tenant/audit"),
    "server_audit": ("GET", "/api/v1/audit"),
    "casil_baseline": ("GET", "/api/v1/casil/baseline"),
    "casil_baseline_put": ("PUT", "/api/v1/casil/baseline"),
    "casil_get": ("GET", "/api/v1/tenants/:tenant/casil"),
    "casil_put": ("PUT", "/api/v1/tenants/:tenant/casil"),
    "casil_delete": ("DELETE", "/api/v1/tenants/:tenant/casil"),
    "publish": ("POST", "/api/v1/tenants/:tenant/publish"),
    "broadcast": ("POST", "/api/v1/tenants/:tenant/broadcast"),
    "history": ("GET", "/api/v1/tenants/:tenant/rooms/:room/history"),
    "rooms": ("GET", "/api/v1/tenants/:tenant/rooms"),
    "history_remove": ("DELETE", "/api/v1/tenants/:tenant/rooms/:room/history"),
    "presence": ("GET", "/api/v1/tenants/:tenant/rooms/:room/presence"),
    "presence_stats": ("GET", "/api/v1/tenants/:tenant/rooms/:room/presence/stats"),
    "state_get": ("GET", "/api/v1/tenants/:tenant/rooms/:room/state"),
    "state_set": ("PUT", "/api/v1/tenants/:tenant/rooms/:room/state/:key"),
    "disconnect": ("POST", "/api/v1/tenants/:tenant/disconnect"),
    "subscribe_user": ("POST", "/api/v1/tenants/:tenant/subscribe"),
    "unsubscribe_user": ("POST", "/api/v1/tenants/:tenant/unsubscribe"),
    "tenant_info": ("GET", "/api/v1/tenants/:tenant/info"),
    "info": ("GET", "/api/v1/info"),
    "console_token": ("POST", "/api/v1/tenants/:tenant/console-token"),
}

class HistoryPosition(TypedDict):
    """A room's newest offset and its epoch."""

    offset: int
    epoch: str


class PublishResult(TypedDict):
    """What the server answers a publish."""

    id: str
    room: str
    offset: int
    epoch: str
    duplicate: bool


class _HistoryMessageBase(TypedDict):
    id: str
    offset: int
    epoch: str
    timestamp: int
    payload: Any


class HistoryMessage(_HistoryMessageBase, total=False):
    """A stored message: ``payload`` is the JSON value, or base64 text with ``payloadFormat: "binary"``."""

    sender: str
    headers: Dict[str, str]
    payloadFormat: Literal["binary"]


class HistoryPage(TypedDict):
    """A page of history and the room's position."""

    messages: List[HistoryMessage]
    position: HistoryPosition


class RoomInfo(TypedDict):
    """A room live on some node, with its subscriptions summed over nodes and the number of nodes it is live on."""

    room: str
    subscribers: int
    nodes: int


class _PresenceMemberBase(TypedDict):
    clientId: str
    user: str


class PresenceMember(_PresenceMemberBase, total=False):
    """A presence member."""

    info: Any
    joinedAt: int


class PresenceStats(TypedDict):
    """Connections and distinct users present in a room."""

    clients: int
    users: int


class _StateEntryBase(TypedDict):
    key: str
    value: Any
    version: int


class StateEntryView(_StateEntryBase, total=False):
    """A room state entry."""

    updatedAt: int


class StateWrite(TypedDict):
    """What a state write answers: the key's new version."""

    key: str
    version: int


class Closed(TypedDict):
    """Connections closed on the node that answered (the other nodes close theirs)."""

    closedHere: int


Json = Dict[str, Any]
Query = Mapping[str, Union[str, int, bool, None]]

DEFAULT_TIMEOUT = 10.0


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[int]:
    """Milliseconds of a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if v.isdigit():
        return int(v) * 1000
    try:
        at = email.utils.parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0, int((at - (time.time() if now is None else now)) * 1000))


def _http_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f'url: "{url}" is not an http(s) or ws(s) URL')
    return f"{scheme}://{parts.netloc}"


def _message_body(payload: Any, headers: Optional[Mapping[str, str]], idempotency_key: Optional[str]) -> Json:
    body: Json = {"payload": base64.b64encode(payload).decode("ascii"), "payloadFormat": "binary"} if isinstance(payload, (bytes, bytearray)) else {"payload": payload}
    if headers is not None:
        body["headers"] = dict(headers)
    if idempotency_key is not None:
        body["idempotencyKey"] = idempotency_key
    return body


class ArqonServerClient:
    """Calls the server API with one credential: ``operator_key`` (sent as ``X-API-Key``, any tenant) or ``token`` (a
    token with role "server" or "admin" of a tenant, sent as a bearer). ``tenant`` is the tenant of calls that do not
    name one; ``timeout`` (seconds, default 10) bounds each request. ``transport`` is handed to httpx (tests, proxies).
    Use it as ``async with``, or call ``aclose()``. Redirects are not followed, so the credential stays with the host.
    """

    def __init__(
        self,
        url: str,
        *,
        operator_key: Optional[str] = None,
        token: Optional[str] = None,
        tenant: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: Optional["httpx.AsyncBaseTransport"] = None,
    ) -> None:
        if operator_key is not None and token is not None:
            raise ValueError("give operator_key or token, not both")
        try:
            import httpx
        except ImportError as err:
            raise ImportError('arqon.server needs httpx: pip install "arqon[server]"') from err
        self.base_url = _http_base(url)
        self.tenant = tenant
        self.timeout = timeout
        headers = {"accept": "application/json"}
        if operator_key is not None:
            headers["x-api-key"] = operator_key
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, follow_redirects=False, transport=transport)

    async def __aenter__(self) -> "ArqonServerClient":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    async def call(self, method: Method, path: str, body: Any = None, query: Optional[Query] = None) -> Any:
        """Sends one request to ``path`` (e.g. ``"/api/v1/tenants/acme/rooms"``) and returns the parsed JSON answer: the
        escape hatch for routes without a method. ``query`` entries that are None are dropped; booleans are sent as
        ``true``/``false``."""
        params = {k: (("true" if v else "false") if isinstance(v, bool) else str(v)) for k, v in (query or {}).items() if v is not None}
        content = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"content-type": "application/json"} if content is not None else {}
        try:
            res = await self._http.request(method, path, params=params, content=content, headers=headers)
        except self._httpx.TimeoutException as err:
            raise ArqonApiError(REQUEST_TIMEOUT, f"no answer from {self.base_url} within {self.timeout} s", status=0) from err
        except self._httpx.TransportError as err:
            raise ArqonApiError(CONNECTION_CLOSED, f"cannot reach {self.base_url}: {err}", status=0) from err
        try:
            parsed: Any = res.json() if res.content else None
        except ValueError:
            parsed = None
        if not 200 <= res.status_code <= 299:
            error = parsed.get("error") if isinstance(parsed, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise ArqonApiError(
                code if isinstance(code, str) else f"HTTP_{res.status_code}",
                message if isinstance(message, str) else f"{method} {path} answered HTTP {res.status_code}",
                status=res.status_code,
                retry_after_ms=parse_retry_after(res.headers.get("retry-after")),
            )
        if parsed is None:
            raise ArqonApiError(f"HTTP_{res.status_code}", f"{method} {path} answered HTTP {res.status_code} without a JSON body", status=res.status_code)
        return parsed

    async def operation(self, name: str, *, params: Optional[Mapping[str, str]] = None, query: Optional[Query] = None, body: Any = None) -> Any:
        """Calls an operation of ``SERVER_OPERATIONS`` by name: ``params`` fill its path (``tenant`` defaults to the
        client's; each value is one path segment, so a ``/`` in a room name is sent as ``%2F``)."""
        method, template = SERVER_OPERATIONS[name]
        values = dict(params or {})
        segments: List[str] = []
        for segment in template.split("/"):
            if not segment.startswith(":"):
                segments.append(segment)
                continue
            key = segment[1:]
            value = values.get(key) or (self.tenant if key == "tenant" else None)
            if not value:
                raise ValueError(f'{name} needs "{key}"' + (": pass tenant= or give the client a tenant" if key == "tenant" else ""))
            segments.append(quote(value, safe=""))
        return await self.call(method, "/".join(segments), body, query)

    @staticmethod
    def _t(tenant: Optional[str], **params: str) -> Dict[str, str]:
        return {**params, "tenant": tenant} if tenant is not None else dict(params)

    # ---- rooms and users (operator, admin or role "server" of the tenant) --------------------------------------

    async def publish(
        self, room: str, payload: Any, *, headers: Optional[Mapping[str, str]] = None, idempotency_key: Optional[str] = None, tenant: Optional[str] = None
    ) -> PublishResult:
        """Publishes into ``room`` through the gateway's publish path (CASIL, limits, history, bus); bytes go as binary."""
        body = {"room": room, **_message_body(payload, headers, idempotency_key)}
        return cast(PublishResult, await self.operation("publish", params=self._t(tenant), body=body))

    async def broadcast(
        self,
        rooms: Sequence[str],
        payload: Any,
        *,
        headers: Optional[Mapping[str, str]] = None,
        idempotency_key: Optional[str] = None,
        tenant: Optional[str] = None,
    ) -> List[Json]:
        """Publishes one message into 1-100 distinct rooms; returns each room's result ``{room, id, offset, ...}`` or
        ``{room, error: {code, message}}``, in the order given."""
        body = {"rooms": list(rooms), **_message_body(payload, headers, idempotency_key)}
        answer = await self.operation("broadcast", params=self._t(tenant), body=body)
        return cast(List[Json], answer["results"])

    async def history(
        self,
        room: str,
        *,
        from_offset: Optional[int] = None,
        to_offset: Optional[int] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        reverse: bool = False,
        limit: Optional[int] = None,
        tenant: Optional[str] = None,
    ) -> HistoryPage:
        """One page of a room's history (oldest first, or newest first with ``reverse``); ``limit`` 1-1000."""
        query: Dict[str, Union[str, int, bool, None]] = {
            "fromOffset": from_offset,
            "toOffset": to_offset,
            "fromTs": from_ts,
            "toTs": to_ts,
            "reverse": True if reverse else None,
            "limit": limit,
        }
        return cast(HistoryPage, await self.operation("history", params=self._t(tenant, room=room), query=query))

    async def history_messages(
        self,
        room: str,
        *,
        from_offset: Optional[int] = None,
        to_offset: Optional[int] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        reverse: bool = False,
        limit: int = 100,
        tenant: Optional[str] = None,
    ) -> AsyncIterator[HistoryMessage]:
        """Every message of the range, page after page (``limit`` is the page size): forwards from ``from_offset``, or
        with ``reverse`` backwards from ``to_offset``. Stops after a short page or at the range's end."""
        while True:
            page = await self.history(
                room, from_offset=from_offset, to_offset=to_offset, from_ts=from_ts, to_ts=to_ts, reverse=reverse, limit=limit, tenant=tenant
            )
            for message in page["messages"]:
                yield message
            if len(page["messages"]) < limit:
                return
            last = page["messages"][-1]["offset"]
            if reverse:
                if last <= 1 or (from_offset is not None and last <= from_offset):
                    return
                to_offset = last - 1
            else:
                if to_offset is not None and last >= to_offset:
                    return
                from_offset = last + 1

    async def rooms(self, *, prefix: Optional[str] = None, limit: Optional[int] = None, tenant: Optional[str] = None) -> List[RoomInfo]:
        """The first page of the tenant's rooms live on any node, sorted by name (``rooms_page`` pages on)."""
        return cast(List[RoomInfo], (await self.rooms_page(prefix=prefix, limit=limit, tenant=tenant))["rooms"])

    async def rooms_page(
        self, *, prefix: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None, tenant: Optional[str] = None
    ) -> Json:
        """One page: ``{"rooms": [...], "next"?: cursor, "partial"?: True}``; pass ``next`` as ``cursor`` for the next."""
        return cast(Json, await self.operation("rooms", params=self._t(tenant), query={"prefix": prefix, "limit": limit, "cursor": cursor}))

    async def history_remove(self, room: str, *, tenant: Optional[str] = None) -> Json:
        """Removes a room's stored history: ``{"removed", "position"}``; the room starts over in a new epoch."""
        return cast(Json, await self.operation("history_remove", params=self._t(tenant, room=room)))

    async def subscribe_user(self, user: str, room: str, *, client: Optional[str] = None, tenant: Optional[str] = None) -> Json:
        """Subscribes the user's live connections (or one ``client``) to ``room`` on every node: ``{"subscribedHere"}``."""
        body: Json = {"user": user, "room": room}
        if client is not None:
            body["client"] = client
        return cast(Json, await self.operation("subscribe_user", params=self._t(tenant), body=body))

    async def unsubscribe_user(self, user: str, room: str, *, client: Optional[str] = None, tenant: Optional[str] = None) -> Json:
        """Ends the user's subscriptions to ``room`` on every node: ``{"unsubscribedHere"}``."""
        body: Json = {"user": user, "room": room}
        if client is not None:
            body["client"] = client
        return cast(Json, await self.operation("unsubscribe_user", params=self._t(tenant), body=body))

    async def tenant_info(self, *, tenant: Optional[str] = None) -> Json:
        """The tenant's connections and subscriptions per node (operator, or an admin of the tenant)."""
        return cast(Json, await self.operation("tenant_info", params=self._t(tenant)))

    async def info(self) -> Json:
        """This node first, then every other node of the cluster (operator only)."""
        return cast(Json, await self.operation("info"))

    async def presence(self, room: str, *, tenant: Optional[str] = None) -> List[PresenceMember]:
        """A room's presence members."""
        answer = await self.operation("presence", params=self._t(tenant, room=room))
        return cast(List[PresenceMember], answer["members"])

    async def presence_stats(self, room: str, *, tenant: Optional[str] = None) -> PresenceStats:
        """How many connections (``clients``) and distinct users are present in a room."""
        return cast(PresenceStats, await self.operation("presence_stats", params=self._t(tenant, room=room)))

    async def state_get(self, room: str, *, tenant: Optional[str] = None) -> List[StateEntryView]:
        """A room's state entries."""
        answer = await self.operation("state_get", params=self._t(tenant, room=room))
        return cast(List[StateEntryView], answer["entries"])

    async def state_set(self, room: str, key: str, value: Any, *, expected_version: Optional[int] = None, tenant: Optional[str] = None) -> StateWrite:
        """Writes a room state key (delivered as a client's state_set is). With ``expected_version`` it applies only
        when the key is at that version (0: must not exist), else ``ARQ_STATE_CONFLICT`` (409)."""
        body: Json = {"value": value}
        if expected_version is not None:
            body["expectedVersion"] = expected_version
        return cast(StateWrite, await self.operation("state_set", params=self._t(tenant, room=room, key=key), body=body))

    async def disconnect(
        self, *, user: Optional[str] = None, client: Optional[str] = None, code: Optional[int] = None, reason: Optional[str] = None, tenant: Optional[str] = None
    ) -> Closed:
        """Closes the matching connections (a user's, one client's, or all) on every node with ``code`` (4000-4999,
        default 4504) and ``reason``."""
        body = {k: v for k, v in {"user": user, "client": client, "code": code, "reason": reason}.items() if v is not None}
        return cast(Closed, await self.operation("disconnect", params=self._t(tenant), body=body))

    # ---- tenant administration (operator; show, kick, revocations, audit and CASIL also the tenant's admin) ------

    async def list_tenants(self) -> Json:
        """``{mode, tenants: [record]}``. Operator only."""
        return cast(Json, await self.operation("list_tenants"))

    async def create_tenant(self, name: str, *, limits: Optional[Mapping[str, int]] = None, description: Optional[str] = None, disabled: Optional[bool] = None) -> Json:
        """Creates a tenant record (409 ``CONFLICT`` when it exists). Operator only."""
        body: Json = {"name": name}
        for k, v in (("limits", dict(limits) if limits is not None else None), ("description", description), ("disabled", disabled)):
            if v is not None:
                body[k] = v
        return cast(Json, await self.operation("create_tenant", body=body))

    async def show_tenant(self, tenant: Optional[str] = None) -> Json:
        """A tenant's record, limits in force, usage, connections here and revocations."""
        return cast(Json, await self.operation("show_tenant", params=self._t(tenant)))

    async def set_tenant(self, tenant: str, *, limits: Optional[Mapping[str, Optional[int]]] = None, description: Optional[str] = None) -> Json:
        """Merges limits (None: back to the default) and the description into a tenant's record. Operator only."""
        body: Json = {}
        if limits is not None:
            body["limits"] = dict(limits)
        if description is not None:
            body["description"] = description
        return cast(Json, await self.operation("set_tenant", params=self._t(tenant), body=body))

    async def delete_tenant(self, tenant: str, *, confirm: str) -> Json:
        """Deletes a tenant and all its data; ``confirm`` must repeat its name. Operator only."""
        return cast(Json, await self.operation("delete_tenant", params=self._t(tenant), query={"confirm": confirm}))

    async def disable_tenant(self, tenant: str) -> Json:
        """Disables a tenant (its connections close with 4503): ``{record, closedHere}``. Operator only."""
        return cast(Json, await self.operation("disable_tenant", params=self._t(tenant), body={}))

    async def enable_tenant(self, tenant: str) -> Json:
        """Enables a disabled tenant; returns its record. Operator only."""
        return cast(Json, await self.operation("enable_tenant", params=self._t(tenant), body={}))

    async def kick(self, *, user: Optional[str] = None, client: Optional[str] = None, tenant: Optional[str] = None) -> Closed:
        """Closes (4504) the matching connections of the tenant on every node."""
        body = {k: v for k, v in {"user": user, "client": client}.items() if v is not None}
        return cast(Closed, await self.operation("kick", params=self._t(tenant), body=body))

    async def console_token(self, *, access: Optional[str] = None, tenant: Optional[str] = None) -> Json:
        """A short-lived (at most 15 minutes) token of the tenant for the web console's WebSocket: ``"read"`` (the
        default) may subscribe and see presence, ``"admin"`` is a ``role: "admin"`` token."""
        body = {"access": access} if access is not None else {}
        return cast(Json, await self.operation("console_token", params=self._t(tenant), body=body))

    async def revocations(self, *, tenant: Optional[str] = None) -> List[Json]:
        """The tenant's revocation rules in force."""
        answer = await self.operation("revocations", params=self._t(tenant))
        return cast(List[Json], answer["revocations"])

    async def revoke(
        self, *, user: Optional[str] = None, jti: Optional[str] = None, before: Optional[int] = None, ttl_ms: Optional[int] = None, tenant: Optional[str] = None
    ) -> Json:
        """Refuses matching tokens (401 ``ARQ_AUTH_REVOKED``), closing live ones (4500): ``{rule, closedHere}``."""
        body = {k: v for k, v in {"user": user, "jti": jti, "before": before, "ttlMs": ttl_ms}.items() if v is not None}
        return cast(Json, await self.operation("revoke", params=self._t(tenant), body=body))

    async def unrevoke(self, rule_id: str, *, tenant: Optional[str] = None) -> bool:
        """Lifts a revocation rule (404 ``NOT_FOUND`` when there is none with that id)."""
        answer = await self.operation("unrevoke", params=self._t(tenant, id=rule_id))
        return bool(answer["removed"])

    async def audit(self, *, limit: Optional[int] = None, before: Optional[int] = None, tenant: Optional[str] = None) -> Json:
        """A page of the tenant's audit trail, newest first: ``{records, next?}``."""
        return cast(Json, await self.operation("audit", params=self._t(tenant), query={"limit": limit, "before": before}))

    async def server_audit(self, *, limit: Optional[int] = None, before: Optional[int] = None) -> Json:
        """A page of the server's own audit trail. Operator only."""
        return cast(Json, await self.operation("server_audit", query={"limit": limit, "before": before}))

    async def casil_baseline(self) -> Json:
        """The CASIL baseline's description and counters. Operator only."""
        return cast(Json, await self.operation("casil_baseline"))

    async def casil_baseline_put(self, *, policy: Any = None, mode: Optional[str] = None, dry_run: bool = False) -> Json:
        """Reloads (or with ``dry_run`` checks) the CASIL baseline: ``policy`` or ``mode``. Operator only."""
        return cast(Json, await self.operation("casil_baseline_put", body=_reload(policy, mode, None, dry_run)))

    async def casil_get(self, *, tenant: Optional[str] = None) -> Json:
        """The tenant's CASIL view: the baseline's public part, its layer and its decision counters."""
        return cast(Json, await self.operation("casil_get", params=self._t(tenant)))

    async def casil_put(self, *, policy: Any = None, mode: Optional[str] = None, clear: Optional[bool] = None, dry_run: bool = False, tenant: Optional[str] = None) -> Json:
        """Changes (or with ``dry_run`` checks) the tenant's CASIL layer: exactly one of ``policy``, ``mode``, ``clear``."""
        return cast(Json, await self.operation("casil_put", params=self._t(tenant), body=_reload(policy, mode, clear, dry_run)))

    async def casil_delete(self, *, tenant: Optional[str] = None) -> Json:
        """Removes the tenant's CASIL layer."""
        return cast(Json, await self.operation("casil_delete", params=self._t(tenant)))


def _reload(policy: Any, mode: Optional[str], clear: Optional[bool], dry_run: bool) -> Json:
    body: Json = {}
    if policy is not None:
        body["policy"] = policy
    if mode is not None:
        body["mode"] = mode
    if clear is not None:
        body["clear"] = clear
    if dry_run:
        body["dryRun"] = True
    return body
