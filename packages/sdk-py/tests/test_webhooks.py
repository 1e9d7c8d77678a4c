"""webhooks - arqon.webhooks verifies what the reference standardwebhooks package signs and the other way round, refuses
replays, tampering, wrong secrets and malformed headers with their codes, and accepts either secret of a rotation."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from datetime import datetime, timezone
from email.message import Message as EmailHeaders
from io import BytesIO
from typing import Any, Dict, List, Tuple

import pytest
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as ReferenceError

from arqon.errors import ArqonError
from arqon.webhooks import (
    HEADER_MISSING,
    SECRET_INVALID,
    SIGNATURE_MALFORMED,
    SIGNATURE_MISMATCH,
    TIMESTAMP_INVALID,
    TIMESTAMP_TOO_NEW,
    TIMESTAMP_TOO_OLD,
    WebhookConfigError,
    WebhookEvent,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)
from support import REPO

BODY = json.dumps({"room": "lobby", "id": "m-1", "offset": 7, "epoch": "e1", "payload": {"text": "héllo"}}, ensure_ascii=False)
PAYLOAD = json.loads(BODY)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode("ascii")


def reference_delivery(secret: str, *, msg_id: str = "msg_hook1_e1_7", timestamp: int = 0, body: str = BODY) -> Dict[str, str]:
    """A delivery signed by the reference implementation."""
    ts = timestamp or int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def refusal(secret: Any, headers: Any, body: Any = BODY, **options: Any) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_webhook(secret, headers, body, **options)
    return caught.value


# --- interoperability with the reference implementation ---


def test_reference_signed_delivery_is_accepted_as_text_and_bytes() -> None:
    secret = new_secret()
    headers = reference_delivery(secret)
    event = verify_webhook(secret, headers, BODY)
    assert event == WebhookEvent(id="msg_hook1_e1_7", timestamp=int(headers["webhook-timestamp"]), payload=PAYLOAD)
    assert verify_webhook(secret, headers, BODY.encode("utf-8")) == event
    assert verify_webhook(secret, headers, bytearray(BODY.encode("utf-8"))) == event
    assert verify_webhook(secret, headers, memoryview(BODY.encode("utf-8"))) == event


def test_sign_webhook_is_accepted_by_the_reference_verifier() -> None:
    secret = new_secret()
    headers = sign_webhook(secret, id="msg_1", body=BODY)
    assert list(headers) == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])
    assert abs(int(headers["webhook-timestamp"]) - time.time()) <= 1
    assert Webhook(secret).verify(BODY, headers) == PAYLOAD
    assert Webhook(secret).verify(BODY.encode("utf-8"), headers) == PAYLOAD
    # byte for byte the signature the reference computes
    same = reference_delivery(secret, msg_id="msg_1", timestamp=int(headers["webhook-timestamp"]))
    assert headers["webhook-signature"] == same["webhook-signature"]


def test_a_replay_older_than_the_tolerance_is_refused_by_ours_and_by_the_reference_verifier() -> None:
    secret = new_secret()
    old = sign_webhook(secret, id="msg_old", body=BODY, timestamp=int(time.time()) - 301)
    err = refusal(secret, old)
    assert err.code == TIMESTAMP_TOO_OLD
    assert re.fullmatch(r"webhook-timestamp is 30[12] s old \(tolerance 300 s\)", err.message)
    with pytest.raises(ReferenceError, match="Message timestamp too old"):
        Webhook(secret).verify(BODY, old)
    assert refusal(secret, reference_delivery(secret, timestamp=int(time.time()) - 301)).code == TIMESTAMP_TOO_OLD


def test_a_timestamp_beyond_the_tolerance_in_the_future_is_refused_by_both() -> None:
    secret = new_secret()
    ahead = sign_webhook(secret, id="msg_new", body=BODY, timestamp=int(time.time()) + 360)
    err = refusal(secret, ahead)
    assert err.code == TIMESTAMP_TOO_NEW
    assert re.fullmatch(r"webhook-timestamp is 3(59|60) s ahead \(tolerance 300 s\)", err.message)
    with pytest.raises(ReferenceError, match="Message timestamp too new"):
        Webhook(secret).verify(BODY, ahead)
    # milliseconds where seconds belong (a common sender mistake) land far in the future
    assert refusal(secret, {**ahead, "webhook-timestamp": str(int(time.time() * 1000))}).code == TIMESTAMP_TOO_NEW


def test_rotation_either_secret_verifies_a_delivery_signed_with_both() -> None:
    current, previous = new_secret(), new_secret()
    headers = sign_webhook([current, previous], id="msg_rot", body=BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (current, previous):
        assert verify_webhook(secret, headers, BODY).id == "msg_rot"
        assert Webhook(secret).verify(BODY, headers) == PAYLOAD
    # a receiver holding both secrets accepts a delivery signed with only one of them, from either signer
    assert verify_webhook([current, previous], reference_delivery(previous), BODY).id == "msg_hook1_e1_7"
    assert verify_webhook((current, previous), sign_webhook(current, id="msg_c", body=BODY), BODY).id == "msg_c"
    err = refusal([new_secret(), new_secret()], headers)
    assert (err.code, err.message) == (SIGNATURE_MISMATCH, "no webhook-signature entry matches the body under any of the 2 secrets")


# --- refusals ---


def test_a_tampered_body_id_or_timestamp_is_refused_with_signature_mismatch() -> None:
    secret = new_secret()
    headers = reference_delivery(secret)
    err = refusal(secret, headers, BODY.replace("héllo", "hello"))
    assert (err.code, err.message) == (SIGNATURE_MISMATCH, "no webhook-signature entry matches the body under the secret")
    assert isinstance(err, ArqonError) and not err.retryable
    assert str(err) == "ARQ_WEBHOOK_SIGNATURE_MISMATCH: no webhook-signature entry matches the body under the secret"
    assert refusal(secret, {**headers, "webhook-id": "msg_other"}).code == SIGNATURE_MISMATCH
    shifted = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)}
    assert refusal(secret, shifted).code == SIGNATURE_MISMATCH


def test_a_wrong_secret_is_refused_with_signature_mismatch() -> None:
    err = refusal(new_secret(), reference_delivery(new_secret()))
    assert (err.code, err.message) == (SIGNATURE_MISMATCH, "no webhook-signature entry matches the body under the secret")


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_or_empty_header_is_refused_with_header_missing(name: str) -> None:
    secret = new_secret()
    headers = reference_delivery(secret)
    rest = {k: v for k, v in headers.items() if k != name}
    for without in (rest, {**rest, name: ""}, {**rest, name: "  "}, {**rest, name: []}):
        err = refusal(secret, without)
        assert (err.code, err.message, err.detail) == (HEADER_MISSING, f"the {name} header is missing", {"header": name})
    with pytest.raises(ReferenceError, match="Missing required headers"):
        Webhook(secret).verify(BODY, rest)


def test_a_malformed_signature_header_is_refused_with_signature_malformed() -> None:
    secret = new_secret()
    headers = reference_delivery(secret)
    good = headers["webhook-signature"][3:]
    for signature in ["garbage", "v1,", "v1", "v1,not base64!", f"v1,{good[:20]}", f"v1;{good}", f"v2,{good}", f"v1a,{good}", f"V1,{good}"]:
        err = refusal(secret, {**headers, "webhook-signature": signature})
        assert (err.code, err.message, err.detail) == (
            SIGNATURE_MALFORMED,
            'webhook-signature holds no "v1,<base64 HMAC-SHA256>" entry',
            {"header": "webhook-signature"},
        ), signature
    # unknown versions and malformed entries beside a good one are skipped (the spec's forward compatibility)
    assert verify_webhook(secret, {**headers, "webhook-signature": f"v1a,xyz garbage v1,{good}"}, BODY).id == "msg_hook1_e1_7"


def test_a_timestamp_that_is_not_whole_seconds_is_refused_with_timestamp_invalid() -> None:
    secret = new_secret()
    headers = reference_delivery(secret)
    for timestamp in ["soon", "1700000000.5", "-1700000000", "1e9", "0x10", "12 34", "١٧٠٠٠٠٠٠٠٠"]:
        err = refusal(secret, {**headers, "webhook-timestamp": timestamp})
        assert (err.code, err.message, err.detail) == (
            TIMESTAMP_INVALID,
            "webhook-timestamp is not an integer number of seconds",
            {"header": "webhook-timestamp"},
        ), timestamp


# --- tolerance, headers, payloads, secrets ---


def test_tolerance_and_clock_are_options_and_the_edge_of_the_window_is_accepted() -> None:
    secret = new_secret()
    at = 1_700_000_000
    headers = sign_webhook(secret, id="msg_t", body=BODY, timestamp=at)
    assert verify_webhook(secret, headers, BODY, now=at + 300.9).timestamp == at
    assert verify_webhook(secret, headers, BODY, now=at - 300 + 0.9).timestamp == at
    assert refusal(secret, headers, now=at + 301).code == TIMESTAMP_TOO_OLD
    assert refusal(secret, headers, now=at - 301).code == TIMESTAMP_TOO_NEW
    assert refusal(secret, headers, now=at + 11, tolerance=10).detail == {"timestamp": at, "now": at + 11, "tolerance": 10}
    assert verify_webhook(secret, headers, BODY, tolerance=3600, now=at + 3600).id == "msg_t"


def test_header_names_are_matched_in_any_case_in_any_mapping() -> None:
    secret = new_secret()
    signed = reference_delivery(secret)
    shouted = {
        "Webhook-Id": signed["webhook-id"],
        "WEBHOOK-TIMESTAMP": signed["webhook-timestamp"],
        "webhook-Signature": signed["webhook-signature"],
        "Content-Type": "application/json",
    }
    assert verify_webhook(secret, shouted, BODY).id == "msg_hook1_e1_7"
    email_headers = EmailHeaders()
    for name, value in shouted.items():
        email_headers[name] = value
    assert verify_webhook(secret, email_headers, BODY).id == "msg_hook1_e1_7"  # type: ignore[arg-type]
    # a list of values (a header sent twice) is combined; the unknown version is skipped
    assert verify_webhook(secret, {**signed, "webhook-signature": ["v1a,unknown", signed["webhook-signature"]]}, BODY).id == "msg_hook1_e1_7"
    # ", "-joined as HTTP servers combine a repeated header
    assert verify_webhook(secret, {**signed, "webhook-signature": f"v1a,unknown, {signed['webhook-signature']}"}, BODY).id == "msg_hook1_e1_7"
    # the reference verifier lower-cases names the same way
    assert Webhook(secret).verify(BODY, shouted) == PAYLOAD


@pytest.mark.parametrize(
    ("text", "payload"),
    [('{"a":[1,2]}', {"a": [1, 2]}), ('"quoted"', "quoted"), ("42", 42), ("plain text, not JSON", "plain text, not JSON"), ("", None)],
)
def test_payload_is_the_parsed_json_the_text_when_not_json_none_when_empty(text: str, payload: Any) -> None:
    secret = new_secret()
    assert verify_webhook(secret, sign_webhook(secret, id="msg_p", body=text), text).payload == payload


def test_a_binary_body_is_signed_as_its_bytes() -> None:
    secret = new_secret()
    raw = b"\xff\x00{"
    headers = sign_webhook(secret, id="msg_b", body=raw)
    assert verify_webhook(secret, headers, raw).id == "msg_b"
    assert refusal(secret, headers, b"\xff\x00|").code == SIGNATURE_MISMATCH


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not*base64", "c2VjcmV0IGtleQ==", "plain-secret", [], b""])
def test_secrets_must_be_whsec_base64_or_key_bytes(secret: Any) -> None:
    headers = reference_delivery(new_secret())
    with pytest.raises(WebhookConfigError) as caught:
        verify_webhook(secret, headers, BODY)
    assert caught.value.code == SECRET_INVALID
    assert isinstance(caught.value, ValueError)
    with pytest.raises(WebhookConfigError):
        sign_webhook(secret, id="x", body=BODY)


def test_key_bytes_and_unpadded_base64_are_the_same_key() -> None:
    key = os.urandom(32)
    signed = sign_webhook(key, id="msg_k", body=BODY)
    encoded = base64.b64encode(key).decode("ascii")
    assert verify_webhook("whsec_" + encoded, signed, BODY).id == "msg_k"
    assert verify_webhook("whsec_" + encoded.rstrip("="), signed, BODY).id == "msg_k"
    assert Webhook("whsec_" + encoded).verify(BODY, signed) == PAYLOAD


def test_sign_webhook_refuses_fractional_timestamps_and_empty_ids() -> None:
    secret = new_secret()
    with pytest.raises(ValueError, match="whole seconds"):
        sign_webhook(secret, id="m", body=BODY, timestamp=time.time())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="whole seconds"):
        sign_webhook(secret, id="m", body=BODY, timestamp=-1)
    with pytest.raises(ValueError, match="non-empty string without whitespace"):
        sign_webhook(secret, id="", body=BODY)


# --- docs ---


def test_every_code_is_the_typescript_sdks_and_is_listed_once_in_docs_errors_md() -> None:
    codes = [HEADER_MISSING, SIGNATURE_MALFORMED, TIMESTAMP_INVALID, TIMESTAMP_TOO_OLD, TIMESTAMP_TOO_NEW, SIGNATURE_MISMATCH, SECRET_INVALID]
    ts_source = (REPO / "packages" / "sdk-ts" / "src" / "webhooks.ts").read_text("utf-8")
    doc = (REPO / "docs" / "errors.md").read_text("utf-8")
    for code in codes:
        assert f'"{code}"' in ts_source, code
        assert len(re.findall(rf"(?<![A-Za-z0-9_]){code}(?![A-Za-z0-9_])", doc)) == 1, code

# --- the receiver in docs/sdk-py.md ---


def doc_receiver() -> Any:
    """The WSGI app of docs/sdk-py.md's "Verifying webhook deliveries" section, run as written (its module-level
    code, without the __main__ block that starts the server)."""
    text = (REPO / "docs" / "sdk-py.md").read_text("utf-8")
    section = text[text.index("## Verifying webhook deliveries") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "no python block in the section"
    namespace: Dict[str, Any] = {"__name__": "doc_receiver"}
    exec(compile(code.group(1), "docs/sdk-py.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["app"]


def call(app: Any, headers: Dict[str, str], body: bytes) -> Tuple[str, bytes]:
    environ: Dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/arqon-webhook",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
        "wsgi.input": BytesIO(body),
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: List[str] = []
    chunks = app(environ, lambda s, _headers: status.append(s))
    return status[0], b"".join(chunks)


def test_the_documented_wsgi_receiver_accepts_a_signed_delivery_and_refuses_a_tampered_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    monkeypatch.setenv("ARQON_WEBHOOK_SECRET", secret)
    app = doc_receiver()
    delivery = json.dumps({"room": "orders", "id": "m-9", "offset": 9, "epoch": "e1", "payload": {"total": 12}}).encode()
    headers = sign_webhook(secret, id="msg_doc", body=delivery)
    assert call(app, headers, delivery) == ("204 No Content", b"")
    assert "msg_doc orders 9 {'total': 12}" in capsys.readouterr().out
    assert call(app, headers, delivery.replace(b"12", b"13")) == ("401 Unauthorized", b"ARQ_WEBHOOK_SIGNATURE_MISMATCH")
    assert call(app, {k: v for k, v in headers.items() if k != "webhook-id"}, delivery) == ("401 Unauthorized", b"ARQ_WEBHOOK_HEADER_MISSING")
