"""`heritage-monitor serve --workers N`: one SO_REUSEPORT socket per worker process, so the kernel spreads
connections over the workers; a worker that dies is replaced; SIGTERM stops them all; an address already
taken fails at once with a message. Also: the app's thread pool is the `api_threads` setting."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import anyio.to_thread
import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.workers import reuse_port_balances
from monitor.settings import Settings

pytestmark = pytest.mark.skipif(not reuse_port_balances(), reason="SO_REUSEPORT balancing is Linux's")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HM_")}
    return env | {"HM_DATA_DIR": str(tmp_path / "data")}


def _serve(tmp_path, port: int, workers: int = 2) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "monitor.cli", "serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _listeners(parent: psutil.Process, port: int) -> dict[int, int]:
    """Per child process: its listening sockets on `port` (the spawn context's resource tracker, a child
    too, has none)."""
    out = {}
    for child in parent.children():
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        out[child.pid] = sum(1 for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port)
    return out


def _worker_listeners(parent: psutil.Process, port: int) -> list[int]:
    return [n for n in _listeners(parent, port).values() if n]


def _established(parent: psutil.Process, port: int) -> dict[int, int]:
    out = {}
    for child in parent.children():
        conns = child.net_connections(kind="tcp")
        out[child.pid] = sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
    return out


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def test_workers_each_listen_share_connections_are_replaced_and_stop_on_sigterm(tmp_path):
    port = _free_port()
    server = _serve(tmp_path, port)
    try:
        parent = psutil.Process(server.pid)
        _wait(lambda: _worker_listeners(parent, port) == [1, 1] and _healthy(port))

        # each worker's own socket (a shared one, inherited from the parent, is one inode in both)
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{c.fd}")
            for pid in _listeners(parent, port)
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert len(inodes) == 2, inodes

        # 32 keep-alive connections, each its own client: the kernel hashes them over both sockets
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(32)]
        try:
            assert all(c.get("/health").status_code == 200 for c in clients)
            per_child = _established(parent, port)
            assert sorted(per_child.values())[-2] > 0, per_child  # both workers serve some
            assert sum(per_child.values()) == 32
        finally:
            for c in clients:
                c.close()

        # a worker that dies is replaced, and the port keeps answering
        victim = next(pid for pid, n in _listeners(parent, port).items() if n)
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: victim not in _listeners(parent, port) and _worker_listeners(parent, port) == [1, 1])
        _wait(lambda: _healthy(port))

        workers = parent.children()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        # every child ends too (multiprocessing's resource tracker a moment after the parent)
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not [w for w in alive if w.status() != psutil.STATUS_ZOMBIE], alive
        assert not _healthy(port)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_an_address_in_use_fails_at_once_with_a_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = _serve(tmp_path, port)
        out, _ = server.communicate(timeout=60)
    assert server.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in out


def test_the_thread_pool_is_the_api_threads_setting(tmp_path):
    settings = Settings(data_dir=tmp_path, api_threads=3, _env_file=None)
    with TestClient(create_app(settings)) as client:
        assert client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens) == 3
