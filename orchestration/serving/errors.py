"""Errors of the scoring service, as JSON of one stable shape.

    {"error": {"code": "invalid_payload", "message": "features.mrr: expected a number, got a
     string", "field": "features.mrr"}}

``code`` is stable (apps branch on it), ``message`` is for people, ``field`` names the part of
the request at fault (a path such as ``entities[3].features.mrr``) or is null. No response ever
carries a Python exception's text or a traceback: an unexpected failure is logged with its
request id and answered ``500 internal``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

NOT_FOUND = "not_found"
UNKNOWN_USE_CASE = "unknown_use_case"
UNKNOWN_ENTITY = "unknown_entity"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
INVALID_PAYLOAD = "invalid_payload"
NOT_READY = "not_ready"
TIMEOUT = "timeout"
INTERNAL = "internal"


class ServiceError(Exception):
    """A request the service answers with an error status (never a Python message)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        return error_body(self.code, self.message, self.field)


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()


def invalid(field: str | None, message: str) -> ServiceError:
    """422: the payload breaks the model's input contract (or the request shape)."""
    where = f"{field}: " if field else ""
    return ServiceError(422, INVALID_PAYLOAD, f"{where}{message}", field)


def too_large(limit: int) -> ServiceError:
    return ServiceError(
        413, PAYLOAD_TOO_LARGE, f"request body exceeds the limit of {limit} bytes", "body"
    )
