"""Fakes of the real Copernicus protocols on 127.0.0.1: the CDSE OAuth token endpoint, the Sentinel Hub
Statistical API and the CEMS Rapid Mapping dashboard API, served by uvicorn in a thread.

Each fake checks what the real clients send and records it; a request that the real service would refuse
gets the service's error shape *and* a line in `violations`, which the tests assert empty.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import shapely
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from shapely.geometry import shape

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
STATS_PATH = "/api/v1/statistics"
EMS_PREFIX = "/backend/dashboard-api"

Reply = tuple[int, Any, dict[str, str]]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict) -> str:
    """A JWT-shaped token whose payload sentinelhub's `SentinelHubSession.info()` can decode.

    `info()` decodes with plain base64 and pads with `len % 4` '=' characters, so the payload is padded (a
    `pad` claim) until its base64url form has no '-'/'_' and a length that this padding handles.
    """
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "fake"}).encode())
    for n in range(64):
        body = _b64url(json.dumps({**claims, "pad": "x" * n}, separators=(",", ":")).encode())
        if "-" in body or "_" in body or len(body) % 4 not in (0, 2):
            continue
        try:
            decoded = json.loads(base64.b64decode(body + "=" * (len(body) % 4)).decode())
        except ValueError:
            continue
        if decoded.get("azp") == claims.get("azp"):
            return f"{header}.{body}.{_b64url(b'not-a-real-signature')}"
    raise AssertionError("could not build a decodable token")


# --- Sentinel Hub -------------------------------------------------------------------------------------


@dataclass
class ShFake:
    client_id: str = "hm-test-client"
    client_secret: str = "s3cret-never-logged-7f1c"
    expires_in: int = 600
    #: the server refuses a token this many seconds before its announced expiry (0 = at expiry)
    server_margin: float = 0.0
    tokens: dict[str, float] = field(default_factory=dict)  # token -> server-side expiry (monotonic)
    token_requests: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    #: replies consumed in order; when empty, `default` answers
    plan: list[Callable[[dict], Reply]] = field(default_factory=list)
    default: Callable[[dict], Reply] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_token(self) -> dict:
        now = time.time()
        token = make_jwt(
            {
                "azp": self.client_id,
                "sub": str(uuid.uuid4()),
                "iat": int(now),
                "exp": int(now + self.expires_in),
                "iss": "http://127.0.0.1/auth/realms/CDSE",
                "jti": str(uuid.uuid4()),
            }
        )
        self.tokens[token] = time.monotonic() + self.expires_in - self.server_margin
        return {
            "access_token": token,
            "expires_in": self.expires_in,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }

    def check_request(self, body: dict, auth: str | None) -> list[str]:
        """What the real Statistical API would refuse in a request from our source."""
        problems: list[str] = []
        if not auth or not auth.startswith("Bearer "):
            return ["missing Bearer token"]
        expiry = self.tokens.get(auth.removeprefix("Bearer "))
        if expiry is None:
            return ["unknown token"]
        if time.monotonic() > expiry:
            return ["expired token"]
        try:
            data = body["input"]["data"]
            if [d.get("type") for d in data] != ["sentinel-2-l2a"]:
                problems.append(f"collection type {data!r}")
            bounds = body["input"]["bounds"]
            crs = bounds["properties"]["crs"]
            if not crs.startswith("http://www.opengis.net/def/crs/EPSG/0/32"):
                problems.append(f"crs {crs}")
            geom = shape(bounds["geometry"])
            if geom.is_empty or not geom.is_valid:
                problems.append("invalid geometry")
            minx, miny, maxx, maxy = geom.bounds
            if not (100_000 <= minx <= maxx <= 900_000 and 0 <= miny <= maxy <= 10_000_000):
                problems.append(f"geometry not in UTM metres: {geom.bounds}")
            agg = body["aggregation"]
            script = agg["evalscript"]
            if not script.startswith("//VERSION=3") or 'id: "dataMask"' not in script:
                problems.append("evalscript without VERSION=3 or dataMask output")
            for band in ("B04", "B08", "B8A", "B11", "B12", "SCL", "dataMask"):
                if f'"{band}"' not in script:
                    problems.append(f"evalscript lacks band {band}")
            if agg["aggregationInterval"]["of"] != "P1D":
                problems.append(f"aggregation interval {agg['aggregationInterval']}")
            if agg.get("resx") != 10 or agg.get("resy") != 10:
                problems.append(f"resolution {agg.get('resx')}, {agg.get('resy')}")
            t0 = datetime.fromisoformat(agg["timeRange"]["from"].replace("Z", "+00:00"))
            t1 = datetime.fromisoformat(agg["timeRange"]["to"].replace("Z", "+00:00"))
            if not agg["timeRange"]["from"].endswith("Z") or t1 <= t0:
                problems.append(f"time range {agg['timeRange']}")
            hist = body.get("calculations", {}).get("nbr", {}).get("histograms", {}).get("default", {})
            if hist.get("nBins") != 20:
                problems.append("no NBR histogram requested")
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"malformed body: {exc!r}")
        return problems


def time_range(body: dict) -> tuple[datetime, datetime]:
    tr = body["aggregation"]["timeRange"]
    return (
        datetime.fromisoformat(tr["from"].replace("Z", "+00:00")),
        datetime.fromisoformat(tr["to"].replace("Z", "+00:00")),
    )


def _stats(mean: float, samples: int, nodata: int) -> dict:
    if samples == nodata:
        return {
            "min": "NaN",
            "max": "NaN",
            "mean": "NaN",
            "stDev": "NaN",
            "sampleCount": samples,
            "noDataCount": nodata,
        }
    return {
        "min": mean - 0.2,
        "max": mean + 0.2,
        "mean": mean,
        "stDev": 0.05,
        "sampleCount": samples,
        "noDataCount": nodata,
    }


def generated_response(body: dict, every: int = 3, cloudy_every: int = 4) -> dict:
    """A Statistical API answer of the real shape for the requested range: an acquisition every `every` days,
    each `cloudy_every`-th of them fully cloudy; pixel counts from the geometry's area."""
    t0, t1 = time_range(body)
    geom = shape(body["input"]["bounds"]["geometry"])
    res = body["aggregation"]["resx"] * body["aggregation"]["resy"]
    samples = max(1, round(geom.area / res))
    data = []
    day, k = t0, 0
    while day < t1:
        if (day - t0).days % every == 0:
            cloudy = k % cloudy_every == cloudy_every - 1
            nodata = samples if cloudy else samples // 5
            valid = samples - nodata
            outputs = {}
            for name, base in (("ndvi", 0.55), ("ndmi", 0.12), ("nbr", 0.35)):
                band: dict[str, Any] = {"stats": _stats(base + 0.001 * k, samples, nodata)}
                if name == "nbr":
                    counts = [0] * 20
                    if valid:
                        counts[13] = valid // 2
                        counts[12] = valid - valid // 2
                    band["histogram"] = {
                        "bins": [
                            {"lowEdge": -1 + 0.1 * i, "highEdge": -0.9 + 0.1 * i, "count": counts[i]}
                            for i in range(20)
                        ],
                        "overflowCount": 0,
                        "underflowCount": 0,
                    }
                outputs[name] = {"bands": {"B0": band}}
            data.append(
                {
                    "interval": {
                        "from": day.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "to": (day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                    "outputs": outputs,
                }
            )
            k += 1
        day += timedelta(days=1)
    return {"data": data, "status": "OK"}


def reply_generated(body: dict) -> Reply:
    return 200, generated_response(body), {}


def reply_json(payload: Any, status: int = 200) -> Callable[[dict], Reply]:
    return lambda body: (status, payload, {})


def reply_status(status: int, retry_after_ms: int | None = None) -> Callable[[dict], Reply]:
    headers = {} if retry_after_ms is None else {"Retry-After": str(retry_after_ms)}
    reasons = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error"}
    payload = {
        "error": {"status": status, "reason": reasons.get(status, "Error"), "message": "fake", "code": "X"}
    }
    return lambda body: (status, payload, headers)


# --- Rapid Mapping ------------------------------------------------------------------------------------


@dataclass
class EmsFake:
    records: list[dict] = field(default_factory=list)  # list records, newest first
    details: dict[str, Any] = field(default_factory=dict)  # code -> detail answer
    first_page: dict | None = None  # served verbatim for offset=0 when its length matches `limit`
    list_requests: list[dict] = field(default_factory=list)
    detail_requests: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    plan: list[Callable[[], Reply]] = field(default_factory=list)
    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # product downloads by file name
    downloads: list[str] = field(default_factory=list)


# --- the server ---------------------------------------------------------------------------------------


class FakeServer:
    """Both fakes on one uvicorn server on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        self.sh = ShFake()
        self.ems = EmsFake()
        self.app = self._app()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> FakeServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)

    def reset(self) -> None:
        self.sh = ShFake()
        self.ems = EmsFake(base=self.url + EMS_PREFIX)

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post(TOKEN_PATH)
        async def token(request: Request) -> Response:
            sh = self.sh
            form = dict(await request.form())
            ctype = request.headers.get("content-type", "")
            with sh.lock:
                sh.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
                if not ctype.startswith("application/x-www-form-urlencoded"):
                    sh.violations.append(f"token request content-type {ctype}")
                if form.get("grant_type") != "client_credentials":
                    sh.violations.append(f"grant_type {form.get('grant_type')}")
                if form.get("client_id") != sh.client_id or form.get("client_secret") != sh.client_secret:
                    return JSONResponse(
                        {
                            "error": "invalid_client",
                            "error_description": "Invalid client or Invalid client credentials",
                        },
                        status_code=401,
                    )
                return JSONResponse(sh.issue_token())

        @app.post(STATS_PATH)
        async def statistics(request: Request) -> Response:
            sh = self.sh
            raw = await request.body()
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            auth = request.headers.get("authorization")
            with sh.lock:
                sh.requests.append({"body": body, "auth": auth, "at": time.monotonic()})
                problems = sh.check_request(body, auth)
                reply = sh.plan.pop(0) if sh.plan else sh.default
            if problems and problems[0] in ("missing Bearer token", "unknown token", "expired token"):
                sh.violations.extend(problems)
                return JSONResponse(
                    {"error": {"status": 401, "reason": "Unauthorized", "message": problems[0]}}, 401
                )
            if problems:
                sh.violations.extend(problems)
                return JSONResponse(
                    {
                        "error": {
                            "status": 400,
                            "reason": "Bad Request",
                            "message": "; ".join(problems),
                            "code": "COMMON_BAD_PAYLOAD",
                        }
                    },
                    400,
                )
            status, payload, headers = (reply or reply_generated)(body)
            return JSONResponse(payload, status_code=status, headers=headers)

        @app.get(EMS_PREFIX + "/public-activations-info/")
        async def ems_list(request: Request) -> Response:
            ems = self.ems
            params = dict(request.query_params)
            ems.list_requests.append(params)
            if ems.plan:
                status, payload, headers = ems.plan.pop(0)()
                return JSONResponse(payload, status_code=status, headers=headers)
            try:
                limit, offset = int(params.get("limit", 10)), int(params.get("offset", 0))
            except ValueError:
                ems.violations.append(f"bad paging {params}")
                return JSONResponse({"detail": "bad paging"}, 400)
            if offset == 0 and ems.first_page is not None and len(ems.first_page["results"]) == limit:
                return JSONResponse(ems.first_page)
            page = ems.records[offset : offset + limit]
            nxt = (
                f"{ems.base}/public-activations-info/?limit={limit}&offset={offset + limit}"
                if offset + limit < len(ems.records)
                else None
            )
            prev = f"{ems.base}/public-activations-info/?limit={limit}" if offset else None
            return JSONResponse({"count": len(ems.records), "next": nxt, "previous": prev, "results": page})

        @app.get(EMS_PREFIX + "/public-activations/")
        async def ems_detail(request: Request) -> Response:
            ems = self.ems
            code = request.query_params.get("code")
            ems.detail_requests.append(code or "")
            if ems.plan:
                status, payload, headers = ems.plan.pop(0)()
                return JSONResponse(payload, status_code=status, headers=headers)
            if not code:
                ems.violations.append("detail request without code")
            detail = ems.details.get(code or "")
            if detail is None:
                return JSONResponse({"count": 0, "next": None, "previous": None, "results": []})
            return JSONResponse(detail)

        @app.get("/backend/products/{name}")
        async def ems_product(name: str) -> Response:
            self.ems.downloads.append(name)
            if name not in self.ems.files:
                return JSONResponse({"detail": "Not found."}, 404)
            return Response(self.ems.files[name], media_type="application/zip")

        return app


def polygon_area(geojson: dict) -> float:
    return float(shapely.area(shape(geojson)))
