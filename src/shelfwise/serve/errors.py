"""Exception handlers: every error leaves the service as `{"code", "message"}`.

* `ShelfwiseError` subclasses: status from `ERROR_CODE_TO_HTTP_STATUS`; server-side
  (5xx) messages are replaced by a generic one, as they may name files.
* Request validation: 422 `invalid-request`, the message naming each field
  (`body.k: Input should be less than or equal to 100`), never echoing the input.
* Routing errors: 404 `not-found`, 405 `method-not-allowed`; a body FastAPI cannot
  parse (not UTF-8 JSON) is 422 `invalid-request` like every other invalid body, not
  the undocumented 400 it raises.
* Anything else is caught by the request middleware (`serve/middleware.py`): 500
  `internal`, no stack trace, the request id in the message for the logs.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shelfwise.errors import ERROR_CODE_TO_HTTP_STATUS, RequestError, ShelfwiseError

logger = logging.getLogger("shelfwise.serve")

INTERNAL_CODE: Final = "internal"
PAYLOAD_TOO_LARGE_CODE: Final = "payload-too-large"
_MAX_ERRORS_SHOWN: Final = 5
# loc parts naming a union member ("str", "list[str]", "constrained-str"), not a field
_UNION_TAG: Final = re.compile(r"[\[\-]|^(str|int|float|bool|none|bytes)$")
# 503 (not ready, event log full) and 409 (a model loading): seconds before a retry
_RETRY_AFTER_S: Final = {503: 5, 409: 5}
_HTTP_CODES: Final = {
    404: "not-found",
    405: "method-not-allowed",
    413: PAYLOAD_TOO_LARGE_CODE,
}


def error_body(code: str, message: str) -> dict[str, str]:
    """The one error shape of the API."""
    return {"code": code, "message": message}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """A JSON error response."""
    return JSONResponse(error_body(code, message), status_code=status)


def internal_message(request_id: str | None) -> str:
    """The message of every 5xx error that must not reveal details."""
    suffix = f" (request id {request_id})" if request_id else ""
    return f"internal error; the server log has the details{suffix}"


def validation_message(errors: Any) -> str:
    """`loc: msg` for each pydantic error, without the offending input."""
    parts: list[str] = []
    for error in list(errors):
        # Union members add loc parts such as "constrained-str" / "list[str]": not fields.
        location = ".".join(
            str(part) for part in error.get("loc", ()) if not _UNION_TAG.search(str(part))
        )
        part = f"{location or 'request'}: {error.get('msg', 'invalid value')}"
        if part not in parts:
            parts.append(part)
    more = len(parts) - _MAX_ERRORS_SHOWN
    parts = parts[:_MAX_ERRORS_SHOWN]
    if more > 0:
        parts.append(f"and {more} more problem(s)")
    return "; ".join(parts) or "the request is invalid"


def request_id_of(request: Request) -> str | None:
    """The id the middleware gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


async def _shelfwise_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ShelfwiseError):  # registered for this class only
        raise exc
    status = ERROR_CODE_TO_HTTP_STATUS.get(exc.code, 500)
    if status >= 500 and status != 503:
        logger.error("request %s failed: %s: %s", request_id_of(request), exc.code, exc.message)
        return error_response(status, exc.code, internal_message(request_id_of(request)))
    response = error_response(status, exc.code, exc.message)
    if status in _RETRY_AFTER_S:  # nothing was done: the same request may be sent again
        response.headers["Retry-After"] = str(_RETRY_AFTER_S[status])
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for this class only
        raise exc
    return error_response(422, RequestError.code, validation_message(exc.errors()))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, StarletteHTTPException):  # registered for this class only
        raise exc
    status = exc.status_code
    if status == 400:  # FastAPI: "There was an error parsing the body"
        return error_response(
            422,
            RequestError.code,
            "body: the request body cannot be parsed; send UTF-8 JSON with "
            "Content-Type: application/json",
        )
    code = _HTTP_CODES.get(status, INTERNAL_CODE if status >= 500 else RequestError.code)
    if status == 404:
        message = "no such route; see /docs for the API"
    elif status == 405:
        message = f"method {request.method} is not allowed on this route; see /docs"
    elif status >= 500:
        message = internal_message(request_id_of(request))
    else:
        message = str(exc.detail)
    response = error_response(status, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on an app."""
    app.add_exception_handler(ShelfwiseError, _shelfwise_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
