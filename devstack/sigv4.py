"""AWS_IAM routes locally: check a request's SigV4 signature as API Gateway does, against the
local fake credentials, by recomputing it with botocore's own signer."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/"
    r"(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
MAX_SKEW = timedelta(minutes=15)


class SignatureRefused(Exception):
    """API Gateway would answer 403 (missing or bad signature)."""


def verify(
    *,
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    secrets: Mapping[str, str],
    account: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``requestContext.authorizer.iam`` of a correctly signed request; else SignatureRefused.

    ``secrets`` maps access key id -> secret access key (the local fake credentials).
    """
    lower = {k.lower(): v for k, v in headers}
    m = _AUTH.match(lower.get("authorization", "").strip())
    if not m:
        raise SignatureRefused("Missing Authentication Token")
    if m["service"] != "execute-api":
        raise SignatureRefused(f"credential scope service {m['service']!r}")
    secret = secrets.get(m["key"])
    if secret is None:
        raise SignatureRefused("The security token included in the request is invalid")
    stamp = lower.get("x-amz-date", "")
    try:
        at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRefused("missing or malformed X-Amz-Date") from None
    if not stamp.startswith(m["date"]) or abs((now or datetime.now(UTC)) - at) > MAX_SKEW:
        raise SignatureRefused("Signature expired")
    signed = m["signed"].split(";")
    if "host" not in signed or any(h not in lower for h in signed):
        raise SignatureRefused("signed headers missing from the request")
    request = AWSRequest(
        method=method,
        url=f"http://{lower['host']}{raw_path}",
        data=body,
        headers={h: lower[h] for h in signed},
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(
        Credentials(m["key"], secret, lower.get("x-amz-security-token")), "execute-api", m["region"]
    )
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, m["signature"]):
        raise SignatureRefused(
            "The request signature we calculated does not match the signature you provided"
        )
    key = m["key"]
    return {
        "accessKey": key,
        "accountId": account,
        "callerId": key,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{account}:user/local-machine",
        "userId": key,
    }


def sign(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key: str,
    secret: str,
    token: str | None,
    region: str,
) -> dict[str, str]:
    """Headers of a SigV4-signed request to ``url`` (as a back-office client would send it)."""
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
    SigV4Auth(Credentials(key, secret, token), "execute-api", region).add_auth(request)
    return dict(request.headers.items())
