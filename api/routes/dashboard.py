"""The site managers' dashboard page at `/` and its static assets under `/dashboard/static/`.

The page is served with a Content-Security-Policy that allows requests to this origin only (plus the
tile server, when one is configured), so the browser itself guarantees the dashboard works offline.
"""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from api.dashboard import INDEX_HTML, STATIC_DIR
from api.deps import SettingsDep

router = APIRouter(include_in_schema=False)
_static = StaticFiles(directory=STATIC_DIR)
CONFIG_MARKER = "__HM_CONFIG__"


@lru_cache(maxsize=1)
def _template() -> str:
    return INDEX_HTML.read_text(encoding="utf-8")


def tile_origin(tile_url: str | None) -> str | None:
    """The origin (`https://host`) of an XYZ tile URL template, `{s}` subdomains as a `*` wildcard."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(tile_url: str | None) -> str:
    """Same-origin only; images may also come from the tile server's origin when tiles are configured."""
    images = " ".join(filter(None, ["'self'", "data:", "blob:", tile_origin(tile_url)]))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def page_config(tile_url: str | None, tile_attribution: str) -> str:
    """The page's configuration as JSON safe to embed in a `<script type="application/json">` element."""
    config = {"tileUrl": tile_url if tile_origin(tile_url) else None, "tileAttribution": tile_attribution}
    return json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/", response_class=HTMLResponse)
def dashboard(settings: SettingsDep) -> HTMLResponse:
    """The dashboard: a map of the sites by risk level, the open alerts and a panel per site."""
    html = _template().replace(
        CONFIG_MARKER, page_config(settings.dashboard_tile_url, settings.dashboard_tile_attribution)
    )
    headers = {
        "Content-Security-Policy": content_security_policy(settings.dashboard_tile_url),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    return HTMLResponse(html, headers=headers)


@router.get("/dashboard/static/{path:path}")
async def dashboard_static(path: str, request: Request) -> Response:
    """A file of the dashboard (script, style sheet, vendored library); 404 problem+json otherwise."""
    response = await _static.get_response(path, request.scope)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
