"""HTTP plumbing of the CEMS Rapid Mapping source: one httpx client with bounded retries, error mapping, a
raw-response cache and the change-detection state file.

The public Rapid Mapping API needs no authentication, has no ETag and no "updated since" filter: whether an
activation's detail must be fetched again is decided from its `(lastUpdate, n_products, n_aois)` in the
activation list, remembered in `<data dir>/cache/ems_rapid_mapping/state.json`.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from monitor.sources.base import SourceAuthError, SourceRequestError, SourceUnavailableError
from monitor.sources.sh_client import RawCache, write_json_atomic

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "heritage-monitor (+https://github.com/) httpx"


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds of an HTTP `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class EmsHttp:
    """GET JSON (or bytes) with bounded retries on 408/425/429/5xx/timeouts honouring Retry-After."""

    def __init__(
        self,
        *,
        timeout: float,
        max_attempts: int,
        backoff: float,
        max_retry_after: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self._transport = transport
        self._client: httpx.Client | None = None
        self.requests_sent = 0

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout,
                follow_redirects=True,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                transport=self._transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def get(self, url: str, params: dict[str, Any] | None = None, dest: Path | None = None) -> httpx.Response:
        """The successful response of a GET (its body streamed into `dest` when given, atomically), or one of
        our source errors."""
        delay = self.backoff
        last: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            self.requests_sent += 1
            try:
                response = self._send(url, params, dest)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = exc
                wait = delay
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status in (401, 403):
                    raise SourceAuthError(f"Rapid Mapping API refused access (HTTP {status}) for {url}")
                if status not in RETRY_STATUS:
                    detail = response.text[:200].replace("\n", " ") if dest is None else ""
                    raise SourceRequestError(f"Rapid Mapping API rejected {url} (HTTP {status}): {detail}")
                last = httpx.HTTPStatusError(f"HTTP {status}", request=response.request, response=response)
                hinted = retry_after_seconds(response.headers.get("Retry-After"))
                if hinted is not None and hinted > self.max_retry_after:
                    raise SourceUnavailableError(
                        f"Rapid Mapping API asked to retry after {hinted:.0f} s (HTTP {status}) for {url}"
                    ) from last
                wait = hinted if hinted is not None else delay
            if attempt < self.max_attempts:
                log.debug("Rapid Mapping attempt %d failed (%s); retrying in %.2fs", attempt, last, wait)
                time.sleep(wait)
                delay *= 2
        raise SourceUnavailableError(
            f"Rapid Mapping API unavailable after {self.max_attempts} attempts for {url}: {last}"
        ) from last

    def _send(self, url: str, params: dict[str, Any] | None, dest: Path | None) -> httpx.Response:
        if dest is None:
            return self._http().get(url, params=params)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._http().stream("GET", url, params=params, headers={"Accept": "*/*"}) as response:
            if response.status_code >= 400:
                response.read()
                return response
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    for block in response.iter_bytes():
                        fh.write(block)
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            return response

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        response = self.get(url, params)
        try:
            return response.json()
        except ValueError as exc:
            raise SourceUnavailableError(f"Rapid Mapping API sent non-JSON for {url}") from exc


def next_params(next_url: str | None) -> dict[str, str] | None:
    """The query parameters of a DRF `next` link (applied to our own base URL, whatever host it names)."""
    if not next_url:
        return None
    return dict(parse_qsl(urlsplit(next_url).query))


class EmsState:
    """`{"activations": {code: {"signature": [...], "cache_key": str, "checked_at": iso}}}` in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            import json

            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.activations: dict[str, dict] = dict(data.get("activations") or {})

    def unchanged(self, code: str, signature: list, cache: RawCache) -> dict | None:
        """The cached detail of an activation whose signature did not change, else None."""
        entry = self.activations.get(code)
        if not entry or entry.get("signature") != signature:
            return None
        return cache.get(entry.get("cache_key", ""))

    def remember(self, code: str, signature: list, cache_key: str) -> None:
        self.activations[code] = {
            "signature": signature,
            "cache_key": cache_key,
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def save(self) -> None:
        write_json_atomic(self.path, {"activations": self.activations})
