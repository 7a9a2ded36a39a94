"""Plumbing of the Sentinel Hub source: the statistical download client we run, the monthly request budget
and the raw-response cache.

The client is sentinelhub-py's own `SentinelHubStatisticalDownloadClient` with four guards added:

- a per-interval `error` given as a bare string (as in sentinelhub-py's recorded fixtures) instead of the
  current `{"type": ...}` object no longer crashes its retry-by-interval logic;
- a `status: FAILED` answer whose `data` is null is passed through to our parser instead of crashing;
- every HTTP request sent to the statistics endpoint is counted (for the budget);
- a 429 whose `Retry-After` (milliseconds) exceeds our limit fails at once instead of sleeping for hours.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinelhub import DataCollection, SentinelHubStatisticalDownloadClient
from sentinelhub.download.models import DownloadRequest, DownloadResponse

from monitor.sources.base import SourceRequestError

log = logging.getLogger(__name__)

_COLLECTION_LOCK = threading.Lock()


class _NoOAuthDebug(logging.Filter):
    """requests-oauthlib logs token request bodies (client secret) and tokens at DEBUG: never let them out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def _silence_oauth_debug() -> None:
    for name in ("requests_oauthlib", "requests_oauthlib.oauth2_session", "oauthlib"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoOAuthDebug) for f in logger.filters):
            logger.addFilter(_NoOAuthDebug())


_silence_oauth_debug()


class RetryAfterTooLongError(Exception):
    """The service asked us to wait longer than we are willing to (429 with a long Retry-After)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Sentinel Hub asked to retry after {seconds:.0f} s (rate limit or quota exhausted)")
        self.seconds = seconds


class BudgetExceededError(SourceRequestError):
    """The run would exceed the monthly Sentinel Hub request budget (`HM_SH_MONTHLY_REQUEST_BUDGET`)."""


def s2l2a_collection(base_url: str) -> DataCollection:
    """Sentinel-2 L2A rebound to `base_url`, as `DataCollection.SENTINEL2_L2A.define_from("s2l2a", ...)`.

    sentinelhub-py keeps collections in a process-wide enum; a name can be bound to one URL only, so a second
    deployment (a mirror, a test fake) gets the name `s2l2a_<hash of url>`.
    """
    base_url = base_url.rstrip("/")
    with _COLLECTION_LOCK:
        definition = DataCollection.SENTINEL2_L2A.value.derive(service_url=base_url)
        existing = DataCollection._value2member_map_.get(definition)
        if existing is not None:
            return existing  # type: ignore[return-value]
        name = "s2l2a"
        if name in DataCollection.__members__:
            name = f"s2l2a_{hashlib.sha1(base_url.encode()).hexdigest()[:10]}"
        return DataCollection.SENTINEL2_L2A.define_from(name, service_url=base_url)


def _error_type(stat_info: dict) -> str | None:
    err = stat_info.get("error")
    if err is None:
        return None
    if isinstance(err, dict):
        return str(err.get("type") or err.get("message") or "ERROR")
    return str(err)


class StatisticalClient(SentinelHubStatisticalDownloadClient):
    """sentinelhub-py's statistical download client, hardened (see module docstring)."""

    def __init__(
        self,
        *,
        max_retry_after_seconds: float,
        on_request: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_retry_after_seconds = max_retry_after_seconds
        self.on_request = on_request

    def _has_retriable_error(self, stat_info: dict) -> bool:
        return _error_type(stat_info) in self._RETRIABLE_ERRORS

    def _process_response(self, request: DownloadRequest, response: DownloadResponse) -> DownloadResponse:
        decoded = response.decode()
        if not isinstance(decoded, dict) or not isinstance(decoded.get("data"), list):
            return response
        return super()._process_response(request, response)

    def _execute_single_stat_download(self, request: DownloadRequest) -> dict:
        interval = (request.post_values or {}).get("aggregation", {}).get("timeRange")
        try:
            info = super()._execute_single_stat_download(request)
        except (KeyError, IndexError, TypeError) as exc:
            log.debug("per-interval retry gave no usable answer: %s", type(exc).__name__)
            return {"interval": interval, "error": {"type": "EXECUTION_ERROR"}}
        if isinstance(info, dict) and "interval" not in info:
            info = {**info, "interval": interval}
        return info

    def _do_download(self, request: DownloadRequest):  # type: ignore[override]
        if self.on_request is not None:
            self.on_request()
        response = super()._do_download(request)
        if response.status_code == 429:
            raw = response.headers.get("Retry-After")
            if raw is not None:
                try:
                    seconds = float(raw) / 1000.0  # Sentinel Hub sends milliseconds
                except ValueError:
                    seconds = 0.0
                if seconds > self.max_retry_after_seconds:
                    raise RetryAfterTooLongError(seconds)
        return response


# --- monthly request budget ---------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_suffix(path.suffix + ".lock")
    with open(lock_path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: best effort
            pass
        yield


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to `path` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class RequestBudget:
    """Requests sent per calendar month (UTC), kept in a small JSON file: `{"2026-11": 123, ...}`.

    A run first reserves the requests it expects (one per site); after the run the reservation is replaced
    by the number actually sent (retries of failed intervals and 429 answers included, conservatively).
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = Path(path)
        self.limit = int(limit)

    @staticmethod
    def month(now: datetime | None = None) -> str:
        return (now or datetime.now(UTC)).strftime("%Y-%m")

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def used(self, month: str | None = None) -> int:
        return self._read().get(month or self.month(), 0)

    def reserve(self, n: int, month: str | None = None) -> str:
        """Reserve `n` requests in the month or raise `BudgetExceededError`; returns the month key."""
        key = month or self.month()
        with _locked(self.path):
            data = self._read()
            used = data.get(key, 0)
            if used + n > self.limit:
                raise BudgetExceededError(
                    f"Sentinel Hub request budget exceeded: {used} of {self.limit} requests used in {key}, "
                    f"this run needs {n}; raise HM_SH_MONTHLY_REQUEST_BUDGET or wait for next month"
                )
            data[key] = used + n
            write_json_atomic(self.path, data)
        return key

    def settle(self, month: str, reserved: int, actual: int) -> None:
        """Replace a reservation by the number of requests actually sent."""
        with _locked(self.path):
            data = self._read()
            data[month] = max(0, data.get(month, 0) - reserved + actual)
            write_json_atomic(self.path, data)


# --- raw-response cache -------------------------------------------------------------------------------


class RawCache:
    """Raw JSON answers in `<data dir>/cache/<source>/<sha256 of the request>.json`, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(request: Any) -> str:
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> Any | None:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, payload: Any) -> None:
        write_json_atomic(self.path(key), payload)


def request_fingerprint(request: DownloadRequest) -> dict:
    """What identifies a statistical request for caching: URL and body (not headers: they hold the token)."""
    return {"url": request.url, "body": copy.deepcopy(request.post_values)}
