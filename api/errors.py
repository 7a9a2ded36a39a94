"""One table from domain errors to HTTP statuses; every error is answered as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indicators import IndicatorInputError, UnknownIndicatorError
from monitor.sources import SourceUnavailableError
from sites import SiteNotFoundError, SiteValidationError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"

DOMAIN_ERRORS: dict[type[Exception], int] = {
    SiteNotFoundError: 404,
    UnknownIndicatorError: 404,
    SiteValidationError: 422,
    IndicatorInputError: 422,
    SourceUnavailableError: 503,
}


class ProblemError(Exception):
    """An error raised by a handler that already knows its status and detail."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers, self.extra = status, detail, headers, extra


def problem(status: int, detail: str, request: Request, headers: dict | None = None, **extra) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError):
        return problem(exc.status, exc.detail, request, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, str(exc.detail), request, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())),
                "message": e.get("msg", ""),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem(422, detail, request, errors=errors)

    for error_type, status in DOMAIN_ERRORS.items():

        async def _domain(request: Request, exc: Exception, status: int = status):
            return problem(status, str(exc), request)

        app.add_exception_handler(error_type, _domain)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "internal error; the incident was logged", request)


# ---- OpenAPI documentation of error responses ----------------------------------------------------------
_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": True,
}
_MEANINGS = {
    400: "Bad request (e.g. an unreadable multipart body).",
    401: "Missing, malformed, unknown or revoked API key (or reading requires a key).",
    403: "The key's role or site scope does not allow this.",
    404: "No such site, indicator, alert or variable.",
    409: "Conflict: the resource already exists.",
    413: "The request body exceeds HM_API_MAX_UPLOAD_MB.",
    415: "Unsupported upload type.",
    422: "Invalid parameters or body; `errors` lists the fields.",
    429: "Rate limit exceeded; retry after `Retry-After` seconds.",
    500: "Unexpected error (logged).",
    503: "A Copernicus source is unavailable.",
}


def problem_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses` entries of problem+json errors with these statuses."""
    out: dict[int | str, dict] = {}
    for code in codes:
        example = {
            "type": "about:blank",
            "title": HTTPStatus(code).phrase,
            "status": code,
            "detail": _MEANINGS.get(code, HTTPStatus(code).phrase),
            "instance": "/api/v1/…",
        }
        entry: dict = {
            "description": _MEANINGS.get(code, HTTPStatus(code).phrase),
            "content": {PROBLEM: {"schema": _PROBLEM_SCHEMA, "example": example}},
        }
        if code == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}}
        if code == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        out[code] = entry
    return out


#: Errors every API route may answer: bad key, invalid parameters, throttled, unexpected.
COMMON_ERRORS = problem_responses(401, 422, 429, 500)
#: Errors of routes that change something.
WRITE_ERRORS = problem_responses(403)
#: Errors documented on the routers whose routes may answer any of the usual client errors.
ALL_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 500)
