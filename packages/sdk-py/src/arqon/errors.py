"""Errors and close codes of the ArqonBus client.

Every error the SDK raises on purpose is an :class:`ArqonError` with a stable ``code`` (the server's codes from
docs/errors.md, e.g. ``"ARQ_AUTH_INVALID"`` or ``"ARQ_STATE_CONFLICT"``). Close codes mirror ``CloseCode`` and
``shouldReconnect`` of ``@arqon/core``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Mapping, Optional

__all__ = [
    "ArqonError",
    "AuthError",
    "RequestError",
    "CommandError",
    "StateConflictError",
    "ConnectionClosedError",
    "FrameDecodeError",
    "RequestTimeoutError",
    "ArqonApiError",
    "CloseCode",
    "should_reconnect",
    "CONNECTION_CLOSED",
    "CLIENT_CLOSED",
    "REQUEST_TIMEOUT",
    "PROTOCOL_UNSUPPORTED",
]

# Codes the client raises on its own (the same as @arqon/sdk's ClientErrorCode); server codes are in docs/errors.md.
#: The connection dropped (or could not be opened) while a call needed it; the client may still reconnect.
CONNECTION_CLOSED = "ARQ_CONNECTION_CLOSED"
#: The client is closed for good: by ``close()``, a terminal close code, or after its last reconnect attempt.
CLIENT_CLOSED = "ARQ_CLIENT_CLOSED"
#: No reply arrived within ``request_timeout``.
REQUEST_TIMEOUT = "ARQ_REQUEST_TIMEOUT"
#: A server code the client also names: the protocol version asked for is not one the server speaks (HTTP 400 at the
#: upgrade, or an ``error`` frame answering ``hello``); the client refuses unknown ``protocol=`` values itself.
PROTOCOL_UNSUPPORTED = "ARQ_PROTOCOL_UNSUPPORTED"

RETRYABLE_CODES = frozenset({"ARQ_RATE_LIMITED", "ARQ_BACKEND_UNAVAILABLE", "ARQ_SHUTTING_DOWN", "ARQ_INTERNAL", "ARQ_PROXY_UNAVAILABLE"})


class ArqonError(Exception):
    """Base of every error the SDK raises on purpose: a stable ``code`` and a human ``message``."""

    def __init__(self, code: str, message: str, *, detail: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed if retried later."""
        return self.code in RETRYABLE_CODES

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class AuthError(ArqonError):
    """The server refused the token (HTTP 401 during the upgrade, close code 4500, or a refused ``auth`` frame).

    ``status`` is the HTTP status of the refused upgrade (401), or ``None`` when the refusal came later.
    """

    def __init__(self, code: str, message: str, *, status: Optional[int] = None) -> None:
        super().__init__(code, message, detail={"status": status} if status is not None else None)
        self.status = status


class RequestError(ArqonError):
    """The server answered a request with an ``error`` frame. ``request_id`` names the request."""

    def __init__(self, code: str, message: str, *, request_id: Optional[str] = None, retryable: bool = False) -> None:
        super().__init__(code, message, detail={"requestId": request_id} if request_id else None)
        self.request_id = request_id
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        return self._retryable or super().retryable


class CommandError(RequestError):
    """A command's ``response`` came back with ``status: "error"`` (codes such as ``NOT_FOUND``, ``VALIDATION_ERROR``)."""

    def __init__(self, code: str, message: str, *, command: str, request_id: Optional[str] = None) -> None:
        super().__init__(code, message, request_id=request_id)
        self.command = command


class StateConflictError(RequestError):
    """A compare-and-set state write lost: the key was not at the ``if_version`` given (``ARQ_STATE_CONFLICT``)."""


class ConnectionClosedError(ArqonError):
    """The connection closed (or could not be opened) while a call needed it.

    ``close_code`` is the WebSocket close code (1006 when the socket was lost without one) and ``reason`` the close
    reason. ``terminal`` says whether the client gave up for good; the code is then ``ARQ_CLIENT_CLOSED``, otherwise
    ``ARQ_CONNECTION_CLOSED`` (whether the server acted on a request in flight is unknown).
    """

    def __init__(self, close_code: int, reason: str = "", *, terminal: bool = False, message: Optional[str] = None) -> None:
        text = message or (f"connection closed with {close_code}" + (f" ({reason})" if reason else ""))
        code = CLIENT_CLOSED if terminal else CONNECTION_CLOSED
        super().__init__(code, text, detail={"closeCode": close_code, "reason": reason})
        self.close_code = close_code
        self.reason = reason
        self.terminal = terminal


class RequestTimeoutError(ArqonError, TimeoutError):
    """No reply within ``request_timeout`` (``ARQ_REQUEST_TIMEOUT``); also a ``TimeoutError``."""

    def __init__(self, message: str) -> None:
        super().__init__(REQUEST_TIMEOUT, message)


class ArqonApiError(ArqonError):
    """The server API (``arqon.server``) refused a request, or gave no answer.

    ``code`` and ``message`` are the server's (docs/errors.md), ``status`` the HTTP status. A request without an answer
    has ``status`` 0 and ``ARQ_REQUEST_TIMEOUT`` (none within the timeout) or ``ARQ_CONNECTION_CLOSED`` (no
    connection, or it broke: whether the server acted is unknown). ``retry_after_ms`` is the answer's
    ``Retry-After`` (a 429 or 503), in milliseconds, when it has one.
    """

    def __init__(self, code: str, message: str, *, status: int, retry_after_ms: Optional[int] = None) -> None:
        super().__init__(code, message, detail={"status": status})
        self.status = status
        self.retry_after_ms = retry_after_ms

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429, 503) or super().retryable


class FrameDecodeError(ArqonError):
    """A frame could not be decoded or encoded (``ARQ_FRAME_MALFORMED``, ``ARQ_FRAME_WRONG_TYPE``, ...)."""

    def __init__(self, code: str, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(code, message, detail={"field": field} if field else None)
        self.field = field


class CloseCode(IntEnum):
    """WebSocket close codes: RFC 6455's, then 4000-4499 (the client reconnects) and 4500-4999 (terminal)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    ABNORMAL = 1006
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    # reconnect range
    SLOW_CONSUMER = 4000
    PING_TIMEOUT = 4001
    RATE_LIMIT_ABUSE = 4002
    BACKEND_UNAVAILABLE = 4003
    TOKEN_EXPIRED = 4004
    # terminal range
    AUTH_INVALID = 4500
    FORBIDDEN = 4501
    PROTOCOL_VIOLATION = 4502
    TENANT_DISABLED = 4503
    KICKED = 4504


_TERMINAL_RFC = frozenset({CloseCode.NORMAL, CloseCode.PROTOCOL_ERROR, CloseCode.UNSUPPORTED_DATA, CloseCode.POLICY_VIOLATION})


def should_reconnect(code: int) -> bool:
    """Whether a client should reconnect after the server closed with ``code`` (mirrors ``shouldReconnect``).

    1000 (a deliberate close), 1002/1003/1008 and the 4500-4999 range are terminal; 4000-4499 and the other RFC codes
    (1001 going away, 1006 abnormal closure, 1011-1013, ...) reconnect with backoff.
    """
    if 4500 <= code <= 4999:
        return False
    if 4000 <= code <= 4499:
        return True
    return code not in _TERMINAL_RFC
