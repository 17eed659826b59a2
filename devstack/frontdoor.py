"""The HTTP front door: API Gateway semantics (HTTP API 2.0 and REST 1.0) in front of the template's routes,
with the checks its authorizers make (JWT of the user pools, SigV4 for AWS_IAM)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from devstack import sigv4
from devstack.cognito import Unauthorized
from devstack.console import serve as serve_console
from devstack.lambda_events import Request, api_event, http_api_event
from devstack.plan import ApiRoute

if TYPE_CHECKING:
    from devstack.stack import LocalStack

CONTROL_PREFIX = "/__devstack/"


@dataclass(frozen=True)
class CompiledRoute:
    route: ApiRoute
    regex: re.Pattern[str]
    literal_segments: int
    greedy: bool

    @classmethod
    def of(cls, route: ApiRoute) -> CompiledRoute:
        parts = []
        literal = 0
        greedy = False
        for segment in route.path.strip("/").split("/"):
            if m := re.fullmatch(r"\{([A-Za-z0-9_.-]+)\+\}", segment):
                parts.append(f"(?P<{_group(m.group(1))}>.+)")
                greedy = True
            elif m := re.fullmatch(r"\{([A-Za-z0-9_.-]+)\}", segment):
                parts.append(f"(?P<{_group(m.group(1))}>[^/]+)")
            else:
                parts.append(re.escape(segment))
                literal += 1
        return cls(route, re.compile("^/" + "/".join(parts) + "/?$"), literal, greedy)


def _group(name: str) -> str:
    return "p_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


class Router:
    """Match (method, path) to a route: literal segments win over parameters, greedy last."""

    def __init__(self, routes: list[ApiRoute]) -> None:
        compiled = [CompiledRoute.of(r) for r in routes]
        self.routes = sorted(compiled, key=lambda c: (c.greedy, -c.literal_segments, c.route.path))

    def match(self, method: str, path: str) -> tuple[ApiRoute | None, dict[str, str], list[str]]:
        """(route, path parameters, methods allowed on the path); route None when no method fits."""
        allowed: list[str] = []
        for c in self.routes:
            m = c.regex.match(path)
            if not m:
                continue
            allowed.append(c.route.method)
            if c.route.method in {method, "ANY"}:
                names = re.findall(r"\{([A-Za-z0-9_.-]+)\+?\}", c.route.path)
                params = {n: unquote(m.group(_group(n))) for n in names}
                return c.route, params, allowed
        return None, {}, allowed


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class FrontDoor:
    """Owns the HTTP server; requests are turned into invocations through the stack."""

    def __init__(self, stack: LocalStack, host: str, port: int) -> None:
        self.stack = stack
        self.router = Router(stack.plan.routes)
        self.stage = stack.api_stage
        handler = type("Handler", (_Handler,), {"door": self})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, client_ip: str
    ) -> tuple[int, dict[str, str] | list[tuple[str, str]], bytes]:
        split = urlsplit(raw_path)
        path = split.path or "/"
        if (console := serve_console(self.stack, method, path, headers, body)) is not None:
            return console
        if path.startswith(CONTROL_PREFIX):
            return self._control(method, path[len(CONTROL_PREFIX) :])
        route, params, allowed = self.router.match(method, path)
        if route is None and path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1 :]
            route, params, allowed = self.router.match(method, path)
        if route is None:
            if allowed:
                status, hdrs, payload = _json(
                    405, {"error": {"code": "method_not_allowed", "message": f"{method} not allowed"}}
                )
                return status, {**hdrs, "Allow": ", ".join(sorted(set(allowed)))}, payload
            return _json(
                404, {"error": {"code": "route_not_found", "message": f"no route for {method} {path}"}}
            )
        authorizer, refusal = self._authorize(route, method, raw_path, headers, body)
        if refusal is not None:
            return refusal
        request = Request(
            method=method,
            path=path,
            path_parameters=params,
            headers=headers,
            query=split.query,
            body=body,
            source_ip=client_ip,
            account=self.stack.account,
            api_id=route.api.lower(),
        )
        if route.payload == "2.0":
            event = http_api_event(
                request,
                route_key=f"{route.method} {route.path}"
                if route.method != "ANY" or route.path != "/{proxy+}"
                else "$default",
                authorizer=authorizer,
                stage=self.stack.http_stages.get(route.api, "$default"),
            )
            outcome = self.stack.invoker.invoke(
                route.function, event, trigger="api", source=f"{method} {route.path}"
            )
            if not outcome.ok:
                return _json(500, {"message": "Internal Server Error"})
            return self._response_v2(outcome.result)
        event = api_event(
            request, resource=route.path, stage=self.stage, identity=(authorizer or {}).get("iam") or {}
        )
        outcome = self.stack.invoker.invoke(
            route.function, event, trigger="api", source=f"{method} {route.path}"
        )
        result = outcome.result
        if not outcome.ok or not isinstance(result, dict) or "statusCode" not in result:
            return _json(502, {"message": "Internal server error"})
        return self._response(result)

    @staticmethod
    def _response(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        pairs: list[tuple[str, str]] = []
        multi = result.get("multiValueHeaders") or {}
        for name, values in multi.items():
            pairs.extend((name, str(v)) for v in values)
        for name, value in (result.get("headers") or {}).items():
            if name not in multi:
                pairs.append((name, str(value)))
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return int(result["statusCode"]), pairs, payload

    @classmethod
    def _response_v2(cls, result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        """HTTP API's reading of a 2.0 response: a dict with statusCode, or any JSON as a 200 body."""
        if not isinstance(result, dict) or "statusCode" not in result:
            return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
        status, pairs, payload = cls._response(result)
        pairs += [("Set-Cookie", c) for c in result.get("cookies") or []]
        return status, pairs, payload

    def _authorize(
        self, route: ApiRoute, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[dict[str, Any] | None, tuple[int, dict[str, str], bytes] | None]:
        """(requestContext.authorizer, None) for an allowed caller, else (None, API Gateway's refusal).

        JWT authorizers: 401 for a missing, forged, expired, other-pool or other-client token.
        AWS_IAM: 403 for a missing or bad SigV4 signature (API Gateway's answer for IAM).
        """
        if route.auth is None:
            return None, None
        if route.auth == "AWS_IAM":
            try:
                iam = sigv4.verify(
                    method=method,
                    raw_path=raw_path,
                    headers=headers,
                    body=body,
                    secrets=self.stack.iam_secrets,
                    account=self.stack.account,
                )
            except sigv4.SignatureRefused as err:
                return None, _json(403, {"message": str(err)})
            return {"iam": iam}, None
        authorizer = self.stack.jwt_authorizers.get(route.auth)
        if authorizer is None:
            self.stack.console.line(f"front door: route {route.method} {route.path} names unknown authorizer")
            return None, _json(500, {"message": "Internal Server Error"})
        value = next((v for k, v in headers if k.lower() == "authorization"), "")
        try:
            claims = authorizer.verify(value)
        except Unauthorized:
            return None, _json(401, {"message": "Unauthorized"})
        return {"jwt": {"claims": claims, "scopes": None}}, None

    def _control(self, method: str, rest: str) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and rest == "health":
            return _json(200, {"status": "ok", "moto": self.stack.moto_url})
        if method == "POST" and rest.startswith("schedules/"):
            name = unquote(rest.split("/", 1)[1])
            try:
                outcome = self.stack.invoke_schedule(name)
            except KeyError as err:
                return _json(404, {"error": {"code": "schedule_not_found", "message": str(err)}})
            return _json(
                200,
                {
                    "function": outcome.function,
                    "ok": outcome.ok,
                    "ms": round(outcome.ms, 1),
                    "result": outcome.result,
                    "error": outcome.error,
                },
            )
        if method == "GET" and rest == "cognito":
            stack = self.stack
            return _json(
                200,
                {
                    "endpoint": stack.cognito_endpoint,
                    "region": stack.options.region,
                    "staff_pool_id": stack.staff_pool_id,
                    "staff_client_id": stack.staff_client_id,
                    "customer_pool_id": stack.customer_pool_id,
                    "customer_client_id": stack.customer_client_id,
                },
            )
        if method == "POST" and rest == "ttl-sweep":
            return _json(200, {"deleted": self.stack.sweep_ttl()})
        return _json(
            404, {"error": {"code": "route_not_found", "message": f"no control route {method} {rest}"}}
        )


class _Handler(BaseHTTPRequestHandler):
    door: FrontDoor
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Invocations are logged by the console, not per request."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = list(self.headers.items())
        try:
            status, out_headers, payload = self.door.handle(
                self.command, self.path, headers, body, self.client_address[0]
            )
        except Exception as err:
            self.door.stack.console.line(f"front door error: {type(err).__name__}: {err}")
            status, out_headers, payload = _json(502, {"message": "Internal server error"})
        self.send_response(status)
        items = out_headers.items() if isinstance(out_headers, dict) else out_headers
        for name, value in items:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve
