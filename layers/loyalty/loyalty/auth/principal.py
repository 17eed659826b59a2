"""The authenticated caller of an API request, read from what API Gateway verified.

API Gateway (an HTTP API with JWT authorizers for the two Cognito user pools, and AWS_IAM for
machine callers) verifies the credentials before the function runs; locally the devstack front
door does the same checks and fills the same fields. Functions never verify tokens themselves:
they read the verified claims from ``requestContext.authorizer`` (payload format 2.0):

- JWT: ``requestContext.authorizer.jwt.claims`` (a flat dict of strings; HTTP APIs render a list
  claim such as ``cognito:groups`` as ``"[store-staff marketing]"``).
- IAM: ``requestContext.authorizer.iam`` (``userArn``, ``accountId``, ...).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Pool(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"
    IAM = "iam"  # a machine caller signed with SigV4 (back office, ERP)


class Role(StrEnum):
    STORE_STAFF = "store-staff"
    MARKETING = "marketing"
    PRIVACY = "privacy"
    ADMIN = "admin"


class Principal(BaseModel):
    """One verified caller. ``subject`` is the Cognito ``sub`` or the IAM user/role ARN."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    pool: Pool
    subject: str
    client_id: str | None = None
    groups: frozenset[str] = frozenset()
    email: str | None = None
    email_verified: bool = False
    phone: str | None = None
    phone_verified: bool = False
    store_id: str | None = None  # staff attribute custom:store_id (store staff work at one store)

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(g) for g in self.groups if g in Role._value2member_map_)

    def has_role(self, *roles: Role) -> bool:
        """True for a staff member in any of ``roles``; admin holds every role."""
        mine = self.roles
        return Role.ADMIN in mine or any(r in mine for r in roles)


def _groups(raw: Any) -> frozenset[str]:
    """``cognito:groups`` as API Gateway renders it: a list, ``"[a b]"``, JSON, or comma separated."""
    if raw is None:
        return frozenset()
    if isinstance(raw, list):
        return frozenset(str(g) for g in raw)
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text[1:-1].replace(",", " ").split()
        return frozenset(str(g) for g in parsed) if isinstance(parsed, list) else frozenset()
    return frozenset(g for g in text.replace(",", " ").split() if g)


def _flag(raw: Any) -> bool:
    return raw is True or str(raw).lower() == "true"


def principal_from_event(event: dict[str, Any], staff_issuer: str) -> Principal | None:
    """The verified principal of an HTTP API (2.0) event, or None when the route was anonymous.

    A JWT issued by ``staff_issuer`` (``https://cognito-idp.<region>.amazonaws.com/<staff pool id>``,
    or the emulator's equivalent locally) is a staff token; any other verified JWT is a customer's.
    """
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if iam := authorizer.get("iam"):
        return Principal(pool=Pool.IAM, subject=str(iam.get("userArn") or iam.get("callerId") or "iam"))
    claims = (authorizer.get("jwt") or {}).get("claims")
    if not claims:
        return None
    client_id = claims.get("client_id") or claims.get("aud")
    pool = Pool.STAFF if claims.get("iss") == staff_issuer else Pool.CUSTOMER
    return Principal(
        pool=pool,
        subject=str(claims.get("sub", "")),
        client_id=str(client_id) if client_id else None,
        groups=_groups(claims.get("cognito:groups")),
        email=claims.get("email"),
        email_verified=_flag(claims.get("email_verified")),
        phone=claims.get("phone_number"),
        phone_verified=_flag(claims.get("phone_number_verified")),
        store_id=claims.get("custom:store_id"),
    )
