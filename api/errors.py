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
