"""HTTP mapping of domain errors, in one place for every API function."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from pydantic import ValidationError

from loyalty.errors import DomainError, TransientError

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
