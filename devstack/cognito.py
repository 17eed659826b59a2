"""The local user pools: created from the template on moto's cognito-idp, demo users, tokens,
and the verification API Gateway's JWT authorizer does (signature against the pool's JWKS,
issuer, audience / client_id, expiry, ``token_use``) with the claims rendered as it renders them.

The demo users are a CONTRACT with the staff console (local only, never in AWS):
``store@demo.local`` (store-staff, ``custom:store_id`` = ``MAD-SOL``), ``marketing@demo.local``,
``privacy@demo.local``, ``admin@demo.local``, all with ``Demo-Passw0rd!``; the demo customer is
Ana (the demo journey's email). Locally every client also allows ``USER_PASSWORD_AUTH`` so a
browser or a test signs in with one ``InitiateAuth`` call.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

from devstack.template import Resolver, resources_of

USER_POOL = "AWS::Cognito::UserPool"
USER_POOL_CLIENT = "AWS::Cognito::UserPoolClient"
USER_POOL_GROUP = "AWS::Cognito::UserPoolGroup"
USER_POOL_DOMAIN = "AWS::Cognito::UserPoolDomain"

DEMO_PASSWORD = "Demo-Passw0rd!"  # noqa: S105 - local demo users only, documented
DEMO_STORE = "MAD-SOL"
#: role -> (email, store id) of the demo staff users
DEMO_STAFF: dict[str, tuple[str, str | None]] = {
    "store-staff": ("store@demo.local", DEMO_STORE),
    "marketing": ("marketing@demo.local", None),
    "privacy": ("privacy@demo.local", None),
    "admin": ("admin@demo.local", None),
}
DEMO_CUSTOMER_EMAIL = "ana.garcia@gmail.com"  # Ana of the demo journey (events/webhooks/app_sign_up)

_POOL_KEYS = ("UsernameAttributes", "AutoVerifiedAttributes", "AdminCreateUserConfig", "MfaConfiguration")
_CLIENT_KEYS = (
    "GenerateSecret",
    "ReadAttributes",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "AllowedOAuthFlowsUserPoolClient",
    "CallbackURLs",
    "LogoutURLs",
    "SupportedIdentityProviders",
    "PreventUserExistenceErrors",
)


def provision_pools(idp: Any, template: dict[str, Any], resolver: Resolver) -> None:
    """Create every user pool, client, group and domain of the template; record ids in ``resolver``.

    Clients get ``ALLOW_USER_PASSWORD_AUTH`` added: local only, so sign-in needs no SRP.
    """
    for logical, res in resources_of(template, USER_POOL).items():
        raw = res.get("Properties", {})  # only what the emulator uses (no SMS role locally)
        props = resolver.resolve({k: raw[k] for k in (*_POOL_KEYS, "Schema", "UserPoolName") if k in raw})
        kwargs = {k: props[k] for k in (*_POOL_KEYS, "Schema") if k in props}
        pool = idp.create_user_pool(PoolName=props.get("UserPoolName", logical), **kwargs)["UserPool"]
        resolver.refs[logical] = pool["Id"]
        resolver.attrs[(logical, "Arn")] = pool["Arn"]
        resolver.attrs[(logical, "ProviderName")] = (
            f"cognito-idp.{resolver.region}.amazonaws.com/{pool['Id']}"
        )
        resolver.attrs[(logical, "ProviderURL")] = (
            f"https://cognito-idp.{resolver.region}.amazonaws.com/{pool['Id']}"
        )
    for logical, res in resources_of(template, USER_POOL_CLIENT).items():
        props = resolver.resolve(res.get("Properties", {}))
        flows = [*props.get("ExplicitAuthFlows", []), "ALLOW_USER_PASSWORD_AUTH"]
        kwargs = {k: props[k] for k in _CLIENT_KEYS if k in props}
        client = idp.create_user_pool_client(
            UserPoolId=props["UserPoolId"],
            ClientName=props.get("ClientName", logical),
            ExplicitAuthFlows=sorted(set(flows)),
            **kwargs,
        )["UserPoolClient"]
        resolver.refs[logical] = client["ClientId"]
    for logical, res in resources_of(template, USER_POOL_GROUP).items():
        props = resolver.resolve(res.get("Properties", {}))
        idp.create_group(
            UserPoolId=props["UserPoolId"],
            GroupName=props["GroupName"],
            Description=props.get("Description", ""),
        )
        resolver.refs[logical] = props["GroupName"]
    for logical, res in resources_of(template, USER_POOL_DOMAIN).items():
        props = resolver.resolve(res.get("Properties", {}))
        resolver.refs[logical] = props["Domain"]  # the hosted UI is not emulated locally


def _create_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str]) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
        MessageAction="SUPPRESS",
        TemporaryPassword=DEMO_PASSWORD,
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=DEMO_PASSWORD, Permanent=True)


def create_demo_users(idp: Any, staff_pool_id: str, customer_pool_id: str) -> None:
    """One staff user per role (store staff at the demo's Madrid store) and the demo customer Ana."""
    for role, (email, store) in DEMO_STAFF.items():
        attributes = {"email": email, "email_verified": "true"}
        if store:
            attributes["custom:store_id"] = store
        _create_user(idp, staff_pool_id, email, attributes)
        idp.admin_add_user_to_group(UserPoolId=staff_pool_id, Username=email, GroupName=role)
    _create_user(
        idp,
        customer_pool_id,
        DEMO_CUSTOMER_EMAIL,
        {"email": DEMO_CUSTOMER_EMAIL, "email_verified": "true", "given_name": "Ana"},
    )


def sign_in(idp: Any, client_id: str, username: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    """``InitiateAuth`` with ``USER_PASSWORD_AUTH``: its ``AuthenticationResult`` (IdToken, ...)."""
    result: dict[str, Any] = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    return result


class Unauthorized(Exception):
    """The token would be refused by API Gateway's JWT authorizer (401)."""


def render_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as an HTTP API hands them to the function: flat strings, a list as ``"[a b]"``."""
    out: dict[str, str] = {}
    for name, value in claims.items():
        if isinstance(value, list):
            out[name] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, dict):
            out[name] = json.dumps(value)
        else:
            out[name] = str(value)
    return out


@dataclass
class JwtAuthorizer:
    """One JWT authorizer of the HTTP API: issuer, audiences and where the pool's keys are."""

    name: str
    issuer: str
    audiences: frozenset[str]
    jwks_url: str
    _keys: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _key(self, kid: str) -> Any:
        with self._lock:
            if kid not in self._keys:
                try:
                    with urllib.request.urlopen(self.jwks_url, timeout=10) as resp:  # noqa: S310 - local moto
                        jwks = jwt.PyJWKSet.from_dict(json.loads(resp.read()))
                except (OSError, ValueError, jwt.PyJWTError) as err:
                    raise Unauthorized(f"cannot read the pool's keys: {err}") from None
                self._keys = {k.key_id: k.key for k in jwks.keys if k.key_id}
            if kid not in self._keys:
                raise Unauthorized(f"unknown signing key {kid!r}")
            return self._keys[kid]

    def verify(self, header_value: str) -> dict[str, str]:
        """Verify ``Authorization`` (the raw token or ``Bearer <token>``); the rendered claims."""
        token = header_value.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise Unauthorized("no token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise Unauthorized(f"algorithm {header.get('alg')!r}")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key(str(header.get("kid", ""))),
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss", "token_use"]},
            )
        except jwt.PyJWTError as err:
            raise Unauthorized(str(err)) from None
        use = claims.get("token_use")
        if use == "id":
            audience = claims.get("aud")
        elif use == "access":
            audience = claims.get("client_id")
        else:
            raise Unauthorized(f"token_use {use!r}")
        if audience not in self.audiences:
            raise Unauthorized("audience not allowed")
        return render_claims(claims)


def jwt_authorizers(template: dict[str, Any], resolver: Resolver, moto_url: str) -> dict[str, JwtAuthorizer]:
    """Every JWT authorizer of every HttpApi of the template, resolved against the local pools."""
    out: dict[str, JwtAuthorizer] = {}
    for api in resources_of(template, "AWS::Serverless::HttpApi").values():
        authorizers = api.get("Properties", {}).get("Auth", {}).get("Authorizers", {})
        for name, spec in authorizers.items():
            config = spec.get("JwtConfiguration")
            if not config:
                continue
            issuer = str(resolver.resolve(config["issuer"]))
            audiences = frozenset(str(a) for a in resolver.resolve(config.get("audience", [])))
            pool_id = issuer.rstrip("/").rsplit("/", 1)[-1]
            out[name] = JwtAuthorizer(name, issuer, audiences, f"{moto_url}/{pool_id}/.well-known/jwks.json")
    return out
