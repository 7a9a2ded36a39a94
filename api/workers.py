"""Several API worker processes on one port, each with its own listening socket (Linux `SO_REUSEPORT`).

uvicorn's `--workers` binds one socket in the parent and shares it: every worker accepts from one queue,
and an idle event loop accepts a whole burst of new connections at once. Keep-alive connections then stay
where they landed: seen here, 57 of a client's 64 connections on one of two workers, which ran at 90% of
a core while the other idled. With a socket per worker in one `SO_REUSEPORT` group, the kernel spreads
new connections over the workers by their address hash.

Each worker is a spawned process that binds its socket and runs `uvicorn.Server`; the parent restarts a
worker that dies, and on SIGINT or SIGTERM stops them all gracefully (uvicorn finishes the requests in
flight). Where the platform has no balancing `SO_REUSEPORT`, `serve` falls back to uvicorn's own workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import time
from typing import Any

log = logging.getLogger("heritage_monitor.api")

#: How long a stopping worker may finish its requests before it is killed (s).
GRACE_S = 30.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def reuse_port_balances() -> bool:
    """True where sockets in one `SO_REUSEPORT` group share the connections out (Linux ≥ 3.9)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to host:port in the `SO_REUSEPORT` group of that address, listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _worker(host: str, port: int, config: dict[str, Any]) -> None:
    """One worker process: its own socket, one uvicorn server (`config` as `uvicorn.Config` takes it)."""
    import uvicorn

    sock = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(**config)).run(sockets=[sock])


def serve(app: str, host: str, port: int, workers: int, **config: Any) -> int:
    """Serve the ASGI app `app` ("module:attr") from `workers` processes; returns when stopped (0) or when
    the address cannot be bound (1). Other keyword arguments go to `uvicorn.Config`."""
    import uvicorn

    if not reuse_port_balances():
        uvicorn.run(app, host=host, port=port, workers=workers, **config)
        return 0
    try:  # fail here, once, with the reason, rather than in every worker in turn
        listening_socket(host, port).close()
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    config = {"app": app, **config}
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []

    def start() -> multiprocessing.Process:
        process = context.Process(target=_worker, args=(host, port, config))
        process.start()
        return process

    previous = {sig: signal.signal(sig, lambda s, _f: stopping.append(s)) for sig in _STOP_SIGNALS}
    processes = [start() for _ in range(workers)]
    log.info("%d API workers on %s:%s, one SO_REUSEPORT socket each", workers, host, port)
    try:
        while not stopping:
            time.sleep(0.5)
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    log.warning("API worker %s exited (%s); starting another", process.pid, process.exitcode)
                    processes[i] = start()
    finally:
        for process in processes:
            process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + GRACE_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
