"""Verifying (and signing) webhook deliveries the Standard Webhooks way (https://www.standardwebhooks.com/), as
ArqonBus's ``op.webhook`` sends them. The Python twin of ``@arqon/sdk/webhooks``, standard library only.

- ``webhook-id``: a unique message id, the same for every retry of one delivery (drop an id you already handled);
- ``webhook-timestamp``: integer seconds since the epoch, refused when further than the tolerance from the clock;
- ``webhook-signature``: space-separated ``v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`` entries (two
  while a secret is rotated); entries of other versions are ignored.

```python
from arqon.webhooks import WebhookVerificationError, verify_webhook

try:
    event = verify_webhook(secret, headers, body)   # the raw body, as received
except WebhookVerificationError as err:
    ...  # answer 401; err.code says why
```
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import ArqonError

__all__ = [
    "verify_webhook",
    "sign_webhook",
    "WebhookEvent",
    "WebhookVerificationError",
    "WebhookConfigError",
    "WebhookSecret",
    "HEADER_MISSING",
    "SIGNATURE_MALFORMED",
    "TIMESTAMP_INVALID",
    "TIMESTAMP_TOO_OLD",
    "TIMESTAMP_TOO_NEW",
    "SIGNATURE_MISMATCH",
    "SECRET_INVALID",
    "DEFAULT_TOLERANCE",
]

# The codes of WebhookVerificationError and WebhookConfigError, the same as @arqon/sdk's WebhookErrorCode.
#: ``webhook-id``, ``webhook-timestamp`` or ``webhook-signature`` is absent or empty (``detail["header"]`` names it).
HEADER_MISSING = "ARQ_WEBHOOK_HEADER_MISSING"
#: ``webhook-signature`` holds no well-formed ``v1,<base64 of 32 bytes>`` entry.
SIGNATURE_MALFORMED = "ARQ_WEBHOOK_SIGNATURE_MALFORMED"
#: ``webhook-timestamp`` is not an integer number of seconds.
TIMESTAMP_INVALID = "ARQ_WEBHOOK_TIMESTAMP_INVALID"
#: ``webhook-timestamp`` is more than the tolerance in the past: a replay, or a delivery held up too long.
TIMESTAMP_TOO_OLD = "ARQ_WEBHOOK_TIMESTAMP_TOO_OLD"
#: ``webhook-timestamp`` is more than the tolerance in the future (or this machine's clock is behind).
TIMESTAMP_TOO_NEW = "ARQ_WEBHOOK_TIMESTAMP_TOO_NEW"
#: No ``v1`` signature matches the body under any of the secrets: tampered, or signed with another secret.
SIGNATURE_MISMATCH = "ARQ_WEBHOOK_SIGNATURE_MISMATCH"
#: A secret is neither ``whsec_<base64>`` nor key bytes, or is empty (a configuration error, not the delivery's).
SECRET_INVALID = "ARQ_WEBHOOK_SECRET_INVALID"

#: How far, in seconds, ``webhook-timestamp`` may be from the clock by default (the spec's five minutes).
DEFAULT_TOLERANCE = 300

#: ``whsec_<base64 of the key>`` as ``op.webhook.register`` answers it, or the key bytes themselves.
WebhookSecret = Union[str, bytes]

_PREFIX = "whsec_"
_DIGEST_BYTES = 32
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_SECONDS = re.compile(r"[0-9]{1,15}")


class WebhookVerificationError(ArqonError):
    """The delivery was refused: a header is missing or malformed, its timestamp is outside the tolerance, or no
    signature matches. Nothing about it can be trusted; answer 401 (or 400) and let the sender retry."""


class WebhookConfigError(ArqonError, ValueError):
    """The receiver is misconfigured (``SECRET_INVALID``): no delivery can be verified until it is fixed."""


@dataclass(frozen=True)
class WebhookEvent:
    """A verified delivery.

    ``id`` is ``webhook-id`` (the same for every retry of one delivery), ``timestamp`` is ``webhook-timestamp`` in
    seconds, ``payload`` the body parsed as JSON, the body text itself when it is not JSON, ``None`` for an empty body.
    """

    id: str
    timestamp: int
    payload: Any


def verify_webhook(
    secret: Union[WebhookSecret, Sequence[WebhookSecret]],
    headers: Mapping[str, Any],
    body: Union[bytes, bytearray, memoryview, str],
    tolerance: int = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> WebhookEvent:
    """Verify a delivery; raise :class:`WebhookVerificationError` (or :class:`WebhookConfigError` for a bad secret).

    ``headers`` is any mapping with names in any case (a ``dict``, ``email.message.Message``, a framework's
    case-insensitive headers, the ``HTTP_*`` keys of a WSGI environ turned into names); a value may be a list of
    strings, combined as HTTP does. ``body`` is the raw body as received, not a re-serialized object. With several
    secrets (a rotation), a signature matching any of them is accepted. ``tolerance`` is in seconds, ``now`` in seconds
    since the epoch (default: ``time.time()``). Signatures are compared with ``hmac.compare_digest``.
    """
    keys = [_key_of(s) for s in _secrets_of(secret)]
    msg_id = _header_of(headers, "webhook-id")
    timestamp_text = _header_of(headers, "webhook-timestamp")
    signatures = _parse_signatures(_header_of(headers, "webhook-signature"))

    if not _SECONDS.fullmatch(timestamp_text):
        raise WebhookVerificationError(
            TIMESTAMP_INVALID, "webhook-timestamp is not an integer number of seconds", detail={"header": "webhook-timestamp"}
        )
    timestamp = int(timestamp_text)
    clock = int(time.time() if now is None else now)
    if clock - timestamp > tolerance:
        raise WebhookVerificationError(
            TIMESTAMP_TOO_OLD,
            f"webhook-timestamp is {clock - timestamp} s old (tolerance {tolerance} s)",
            detail={"timestamp": timestamp, "now": clock, "tolerance": tolerance},
        )
    if timestamp - clock > tolerance:
        raise WebhookVerificationError(
            TIMESTAMP_TOO_NEW,
            f"webhook-timestamp is {timestamp - clock} s ahead (tolerance {tolerance} s)",
            detail={"timestamp": timestamp, "now": clock, "tolerance": tolerance},
        )

    content = _signed_content(msg_id, timestamp, body)
    for key in keys:
        expected = hmac.new(key, content, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            return WebhookEvent(id=msg_id, timestamp=timestamp, payload=_payload_of(body))
    under = "the secret" if len(keys) == 1 else f"any of the {len(keys)} secrets"
    raise WebhookVerificationError(SIGNATURE_MISMATCH, f"no webhook-signature entry matches the body under {under}")


def sign_webhook(
    secret: Union[WebhookSecret, Sequence[WebhookSecret]],
    *,
    id: str,
    body: Union[bytes, bytearray, memoryview, str],
    timestamp: Optional[int] = None,
) -> Dict[str, str]:
    """Sign a delivery: return its ``webhook-id``, ``webhook-timestamp`` (default: now) and ``webhook-signature``
    headers, one ``v1`` entry per secret in the order given (current secret first during a rotation). For tests, and
    for forwarding a delivery to another receiver under your own secret."""
    keys = [_key_of(s) for s in _secrets_of(secret)]
    ts = int(time.time()) if timestamp is None else timestamp
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        raise ValueError(f"timestamp must be whole seconds since the epoch, got {ts!r}")
    if not id or any(c.isspace() for c in id):
        raise ValueError("id must be a non-empty string without whitespace")
    content = _signed_content(id, ts, body)
    entries = [f"v1,{base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode('ascii')}" for key in keys]
    return {"webhook-id": id, "webhook-timestamp": str(ts), "webhook-signature": " ".join(entries)}


def _secrets_of(secret: Union[WebhookSecret, Sequence[WebhookSecret]]) -> List[WebhookSecret]:
    secrets: List[WebhookSecret] = [secret] if isinstance(secret, (str, bytes, bytearray)) else list(secret)
    if not secrets:
        raise WebhookConfigError(SECRET_INVALID, "no webhook secret given")
    return secrets


def _key_of(secret: WebhookSecret) -> bytes:
    if isinstance(secret, (bytes, bytearray)):
        if not secret:
            raise WebhookConfigError(SECRET_INVALID, "the webhook secret is empty")
        return bytes(secret)
    if not isinstance(secret, str) or not secret.startswith(_PREFIX):
        raise WebhookConfigError(SECRET_INVALID, 'a webhook secret string must be "whsec_" and base64 (or pass the key bytes)')
    key = _from_base64(secret[len(_PREFIX) :])
    if not key:
        raise WebhookConfigError(SECRET_INVALID, 'the webhook secret after "whsec_" is not (non-empty) base64')
    return key


def _header_of(headers: Mapping[str, Any], name: str) -> str:
    values: List[str] = []
    for key, value in headers.items():
        if not isinstance(key, str) or key.lower() != name or value is None:
            continue
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, (list, tuple)):
            values.extend(v for v in value if isinstance(v, str))
    combined = ", ".join(v.strip() for v in values if v.strip())
    if not combined:
        raise WebhookVerificationError(HEADER_MISSING, f"the {name} header is missing", detail={"header": name})
    return combined


def _parse_signatures(header: str) -> List[bytes]:
    """The 32-byte digests of the ``v1`` entries; entries of other versions (e.g. ``v1a``) are skipped."""
    digests: List[bytes] = []
    # A header sent twice arrives joined with ", "; base64 holds no comma, so a trailing one is that join.
    for entry in header.split():
        entry = entry[:-1] if entry.endswith(",") else entry
        version, comma, value = entry.partition(",")
        if not comma or version != "v1":
            continue
        digest = _from_base64(value)
        if digest is not None and len(digest) == _DIGEST_BYTES:
            digests.append(digest)
    if not digests:
        raise WebhookVerificationError(
            SIGNATURE_MALFORMED, 'webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry', detail={"header": "webhook-signature"}
        )
    return digests


def _signed_content(msg_id: str, timestamp: int, body: Union[bytes, bytearray, memoryview, str]) -> bytes:
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return f"{msg_id}.{timestamp}.".encode("utf-8") + data


def _payload_of(body: Union[bytes, bytearray, memoryview, str]) -> Any:
    text = body if isinstance(body, str) else bytes(body).decode("utf-8", errors="replace")
    if text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _from_base64(text: str) -> Optional[bytes]:
    if not _BASE64.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
