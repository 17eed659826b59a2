"""What every API function shares: domain errors -> HTTP, the access policy, the Idempotency-Key,
and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from loyalty.auth.policy import authorize, staff_issuer
from loyalty.auth.principal import Principal, principal_from_event
from loyalty.errors import DomainError, InvalidInput, TransientError

logger = Logger(child=True)


def problem(status: int, code: str, message: str, field: str | None = None, **extra: Any) -> Response[str]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field is not None:
        body["error"]["field"] = field
    body["error"].update(extra)
    return Response(status_code=status, content_type="application/json", body=body)  # type: ignore[arg-type]


def register_error_handlers(app: Any) -> None:
    """Map DomainError -> its 4xx, pydantic ValidationError -> 422, TransientError -> 503."""

    @app.exception_handler(DomainError)  # type: ignore[untyped-decorator]
    def _domain(err: DomainError) -> Response[str]:
        logger.info("request refused", extra={"code": err.code, "status": err.status, "field": err.field})
        return problem(err.status, err.code, err.message, err.field)

    @app.exception_handler(ValidationError)  # type: ignore[untyped-decorator]
    def _validation(err: ValidationError) -> Response[str]:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        return problem(422, "validation_error", first["msg"], field)

    @app.exception_handler(TransientError)  # type: ignore[untyped-decorator]
    def _transient(err: TransientError) -> Response[str]:
        logger.warning("transient failure, caller should retry", extra={"error": str(err)})
        response = problem(503, "temporarily_unavailable", "try again shortly")
        response.headers["Retry-After"] = "1"
        return response


class _Guarded(APIGatewayHttpResolver):
    """Applies the access policy before anything else (validation included): a caller the policy
    refuses learns nothing about the route's input or data."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            caller = principal_from_event(dict(event), staff_issuer())
            authorize(str(event.get("routeKey", "")), caller)
        except DomainError as err:
            logger.info("request refused", extra={"code": err.code, "status": err.status})
            body = {"error": {"code": err.code, "message": err.message}}
            return {
                "statusCode": err.status,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps(body),
                "isBase64Encoded": False,
            }
        self.append_context(principal=caller)  # type: ignore[no-untyped-call]
        return super().resolve(event, context)


def api(title: str, openapi_path: str) -> APIGatewayHttpResolver:
    """The resolver of one API function: validation on, errors mapped, every route behind the
    access policy (``loyalty.auth.policy``), and its OpenAPI document at ``openapi_path``."""
    app = _Guarded(enable_validation=True)
    register_error_handlers(app)

    @app.get(openapi_path, summary="This API's OpenAPI document", tags=["meta"], include_in_schema=False)
    def _openapi() -> Response[str]:
        document = app.get_openapi_json_schema(title=title, version="1.0.0")
        return Response(status_code=200, content_type="application/json", body=document)

    return app


def principal(app: APIGatewayHttpResolver) -> Principal | None:
    """The verified caller of the current request (set by the access policy)."""
    found = app.context.get("principal")
    return found if isinstance(found, Principal) else None


def idempotency_key(app: APIGatewayHttpResolver) -> str:
    """The ``Idempotency-Key`` header (1-128 characters), required on every retried-safe create."""
    key = (app.current_event.headers.get("idempotency-key") or "").strip()  # headers: case-insensitive
    if not key or len(key) > 128:
        raise InvalidInput("an Idempotency-Key header (1-128 chars) is required", field="Idempotency-Key")
    return key
