"""One hierarchy of domain errors; HTTP statuses are mapped in exactly one place (loyalty.http)."""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure with a machine-readable code (and the field at fault, if any); a
    subclass names its HTTP status and default code: ``class NotFound(DomainError, status=404, ...)``."""

    status = 400
    code = "invalid_request"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        super().__init_subclass__()
        cls.status = status or cls.status
        cls.code = code or cls.code

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(DomainError, status=400, code="invalid_input"): ...


class Unauthorized(DomainError, status=401, code="unauthorized"): ...


class Forbidden(DomainError, status=403, code="forbidden"): ...


class NotFound(DomainError, status=404, code="not_found"): ...


class Conflict(DomainError, status=409, code="conflict"): ...


class PayloadTooLarge(DomainError, status=413, code="payload_too_large"): ...


class UnsupportedMediaType(DomainError, status=415, code="unsupported_media_type"): ...


class Unprocessable(DomainError, status=422, code="validation_error"): ...


class MissingSetting(RuntimeError):
    """A value the function needs is not configured: a deployment error, raised at cold start."""


class TransientError(Exception):
    """An AWS-side failure worth retrying (throttling, 5xx, a lost transaction race).

    Never mapped to a 4xx: an HTTP handler answers 503 so the caller retries, a batch
    handler lets the record fail so SQS / the stream redelivers it.
    """
