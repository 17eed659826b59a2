"""The staff console on the local stack: ``console/dist`` at ``/console/`` (SPA fallback to
index.html), ``/console/config.json`` built from the stack, and Cognito's JSON API proxied
same-origin at ``/__devstack/cognito`` (the browser never needs CORS to reach the emulator).

The front door asks :func:`serve` first; ``None`` means "not the console's path".
"""

from __future__ import annotations

import json
import mimetypes
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack.template import ROOT

if TYPE_CHECKING:
    from devstack.stack import LocalStack

DIST = ROOT / "console" / "dist"
PREFIX = "/console"
COGNITO_PATH = "/__devstack/cognito"
_FORWARDED = {"content-type", "x-amz-target", "x-amz-user-agent"}

Answer = tuple[int, dict[str, str], bytes]


def console_config(stack: LocalStack) -> dict[str, Any]:
    """What the console reads at start: password sign-in against the emulator's staff pool.

    ``staff_client_id`` / ``staff_pool_id`` are the stack's once the staff pool is provisioned;
    without them the console still loads and says that sign-in is not configured."""
    return {
        "apiBase": "",
        "auth": {
            "mode": "password",
            "cognitoEndpoint": COGNITO_PATH,
            "clientId": str(getattr(stack, "staff_client_id", "") or ""),
            "userPoolId": str(getattr(stack, "staff_pool_id", "") or ""),
            "region": stack.options.region,
        },
    }


def _error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> Answer:
    return _json(status, {"error": {"code": code, "message": message}}, extra)


def _json(status: int, body: Any, extra: dict[str, str] | None = None) -> Answer:
    headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **(extra or {})}
    return status, headers, json.dumps(body).encode()


def _file(path: Path) -> Answer:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in {"application/javascript", "application/json"}:
        ctype += "; charset=utf-8"
    # Hashed assets never change; index.html must be re-read so a rebuild shows at once.
    cache = "public, max-age=31536000, immutable" if "/assets/" in path.as_posix() else "no-cache"
    return 200, {"Content-Type": ctype, "Cache-Control": cache}, path.read_bytes()


def static(path: str, dist: Path = DIST) -> Answer:
    """``path`` below /console/: the file, or index.html for an app route (no extension)."""
    root = dist.resolve()
    index = root / "index.html"
    if not index.is_file():
        return _error(503, "console_not_built", "run `make run` (or `npm run build` in console/)")
    rel = path.lstrip("/")
    target = (root / rel).resolve()
    if rel and target.is_relative_to(root) and target.is_file():
        return _file(target)
    if rel.startswith("assets/") or Path(rel).suffix:
        return _error(404, "not_found", f"no file {path}")
    return _file(index)


def cognito_proxy(stack: LocalStack, body: bytes, headers: list[tuple[str, str]]) -> Answer:
    """POST the Cognito JSON API request to the emulator as is; its answer, as is."""
    forward = {k: v for k, v in headers if k.lower() in _FORWARDED}
    if not any(k.lower() == "x-amz-target" for k in forward):
        return _json(400, {"__type": "MissingTarget", "message": "X-Amz-Target is required"})
    req = urllib.request.Request(stack.moto_url + "/", data=body, headers=forward, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the local emulator
            status, payload, ctype = resp.status, resp.read(), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as err:
        status, payload, ctype = err.code, err.read(), err.headers.get("Content-Type")
    out = {"Content-Type": ctype or "application/x-amz-json-1.1", "Cache-Control": "no-store"}
    return status, out, payload


def serve(
    stack: LocalStack, method: str, path: str, headers: list[tuple[str, str]], body: bytes
) -> Answer | None:
    """The console's answer for this request, or None when the path is not the console's."""
    if path == COGNITO_PATH:
        if method != "POST":
            return _error(405, "method_not_allowed", "POST only", {"Allow": "POST"})
        return cognito_proxy(stack, body, headers)
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return None
    if method not in {"GET", "HEAD"}:
        return _error(405, "method_not_allowed", f"{method} not allowed", {"Allow": "GET, HEAD"})
    if path == PREFIX:
        return 308, {"Location": PREFIX + "/"}, b""
    if path == PREFIX + "/config.json":
        return _json(200, console_config(stack))
    return static(path[len(PREFIX) :])
