"""Open-loop HTTP load generator: requests sent at fixed instants, latency measured from those instants.

`wrk` keeps N connections busy (closed loop): when the server slows down it sends fewer requests, and the
requests it did not send never show up in the latencies (coordinated omission). Here request i is due at
`t0 + i / rate` whatever happened before; its latency runs from that due instant to the end of its
response, so a stalled server (or a stalled generator) shows up in the percentiles. The lag between the
due instant and the actual send is reported apart, to tell a slow generator from a slow server.

Run as its own process (the benchmark does): `python -m benchmarks.loadgen URL_BASE PATHS_FILE --rate 200
--duration 60 [--key-env HM_BENCH_KEY]`; prints one JSON object with the figures on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np


class Pool:
    """Keep-alive HTTP/1.1 connections to one host: a minimal GET client on asyncio streams.

    httpx costs more CPU per request than the server under test spends on a small answer, which would
    make the generator the bottleneck; this client parses only the status line, Content-Length and
    chunked bodies (all the API sends)."""

    def __init__(self, base_url: str, headers: dict[str, str], size: int) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.head = f"Host: {self.host}:{self.port}\r\n{extra}\r\n"
        self.free: asyncio.Queue = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(None)  # a slot; the connection opens on first use

    async def get(self, path: str) -> int:
        """Status code of GET `path`, the body read in full."""
        conn = await self.free.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            writer.write(f"GET {path} HTTP/1.1\r\n{self.head}".encode())
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("connection closed by the server")
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                while size := int((await reader.readline()).split(b";")[0], 16):
                    await reader.readexactly(size + 2)
                await reader.readline()
            elif length:
                await reader.readexactly(length)
            if close:
                writer.close()
                conn = None
            return status
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            if conn is not None:
                conn[1].close()
            conn = None
            raise
        finally:
            self.free.put_nowait(conn)

    async def close(self) -> None:
        while not self.free.empty():
            conn = self.free.get_nowait()
            if conn is not None:
                conn[1].close()


async def _one(pool: Pool, path: str, due: float, out: list, i: int) -> None:
    delay = due - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    sent = time.perf_counter()
    try:
        status: int | str = await pool.get(path)
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        status = type(exc).__name__
    done = time.perf_counter()
    out[i] = (done - due, sent - due, status, done)


async def drive(
    base_url: str, paths: list[str], rate: float, duration: float, key: str | None, connections: int = 64
) -> dict:
    """Send `rate` requests/s for `duration` s, rotating over `paths`; the figures as a dict (ms)."""
    n = max(1, int(rate * duration))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    pool = Pool(base_url, headers, connections)
    results: list = [None] * n
    try:
        await pool.get("/health")  # open one connection before the clock starts
        t0 = time.perf_counter() + 0.2
        tasks = []
        for i in range(n):
            due = t0 + i / rate
            # create tasks a little ahead of their instant, never all at once (memory, loop load)
            ahead = due - time.perf_counter() - 0.5
            if ahead > 0:
                await asyncio.sleep(ahead)
            tasks.append(asyncio.create_task(_one(pool, paths[i % len(paths)], due, results, i)))
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
    return summarise(results, rate, duration, t0)


def summarise(results: list, rate: float, duration: float, t0: float) -> dict:
    """Percentiles of latency (from the due instant) and of send lag, achieved rate, errors, non-2xx."""
    latency = np.array([r[0] for r in results]) * 1000
    lag = np.array([r[1] for r in results]) * 1000
    statuses = [r[2] for r in results]
    errors = sum(1 for s in statuses if isinstance(s, str))
    non2xx = sum(1 for s in statuses if isinstance(s, int) and not 200 <= s < 300)
    last = max(r[3] for r in results)
    p50, p90, p99 = np.percentile(latency, [50, 90, 99])
    return {
        "generator": "open-loop Python generator (asyncio, keep-alive HTTP/1.1)",
        "target_rate": rate,
        "duration_s": duration,
        "requests": len(results),
        "achieved_rate": len(results) / (last - t0),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(latency.max()),
        "send_lag_p99_ms": float(np.percentile(lag, 99)),
        "errors": errors,
        "non_2xx": non2xx,
        "statuses": dict(sorted(Counter(map(str, statuses)).items())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("paths_file", type=Path, help="one request path per line, used in rotation")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--key-env", default="HM_BENCH_KEY", help="environment variable holding the API key")
    args = parser.parse_args(argv)
    paths = [p for p in args.paths_file.read_text().splitlines() if p.strip()]
    if not paths:
        sys.exit("no request paths given")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    figures = asyncio.run(
        drive(args.base_url, paths, args.rate, args.duration, os.environ.get(args.key_env), args.connections)
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
