"""Our Standard Webhooks verifier against the specification's published vectors and library."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from loyalty.errors import Unauthorized
from loyalty.ingest.signature import sign, signed_headers, verify

# standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py (test_sign_function)
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_PAYLOAD = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _headers(signature: str, ts: int = SPEC_TS, msg_id: str = SPEC_ID) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_sign_matches_the_spec_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_PAYLOAD) == SPEC_SIGNATURE
    assert sign(SPEC_SECRET.removeprefix("whsec_"), SPEC_ID, SPEC_TS, SPEC_PAYLOAD) == SPEC_SIGNATURE


def test_verify_accepts_the_spec_vector_and_returns_its_id() -> None:
    assert (
        verify(_headers(SPEC_SIGNATURE), SPEC_PAYLOAD, [SPEC_SECRET], now=SPEC_TS, tolerance_s=300) == SPEC_ID
    )


def test_the_spec_multi_signature_header_verifies() -> None:
    # the spec's test_multi_sig_payload_is_valid: wrong v1, a v2, the valid one, wrong v1
    wrong = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    header = f"v1,{wrong} v2,{wrong} {SPEC_SIGNATURE} v1,{wrong}"
    assert verify(_headers(header), SPEC_PAYLOAD, [SPEC_SECRET], now=SPEC_TS, tolerance_s=300) == SPEC_ID


@pytest.mark.parametrize(
    ("headers", "now", "code"),
    [
        (_headers("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="), SPEC_TS, "signature_invalid"),
        (_headers(SPEC_SIGNATURE), SPEC_TS + 301, "signature_expired"),
        (_headers(SPEC_SIGNATURE), SPEC_TS - 301, "signature_expired"),
        ({"webhook-id": SPEC_ID, "webhook-signature": SPEC_SIGNATURE}, SPEC_TS, "signature_missing"),
        (_headers(SPEC_SIGNATURE) | {"webhook-timestamp": "hello"}, SPEC_TS, "signature_malformed"),
        (_headers(SPEC_SIGNATURE, msg_id="msg_other"), SPEC_TS, "signature_invalid"),
    ],
)
def test_the_spec_refusals(headers: dict[str, str], now: int, code: str) -> None:
    with pytest.raises(Unauthorized) as err:
        verify(headers, SPEC_PAYLOAD, [SPEC_SECRET], now=now, tolerance_s=300)
    assert err.value.code == code


@settings(max_examples=60, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=48),
    body=st.binary(max_size=512).map(lambda b: b.decode("latin-1").encode()),
    msg_id=st.from_regex(r"msg_[A-Za-z0-9]{1,30}", fullmatch=True),
    ts=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
)
def test_same_signature_as_the_standardwebhooks_library(
    key: bytes, body: bytes, msg_id: str, ts: int
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    ours = sign(secret, msg_id, ts, body)
    theirs = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    assert ours == theirs
    headers = signed_headers(secret, ts, body, msg_id)
    assert verify(
        headers, body, ["whsec_" + base64.b64encode(b"x" * 24).decode(), secret], now=ts, tolerance_s=1
    )


@given(garbage=st.text(max_size=200))
def test_any_signature_header_is_a_401_never_a_crash(garbage: str) -> None:
    with pytest.raises(Unauthorized):
        verify(_headers(garbage), SPEC_PAYLOAD, [SPEC_SECRET], now=SPEC_TS, tolerance_s=300)
