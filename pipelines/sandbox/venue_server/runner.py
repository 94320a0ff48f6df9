"""Run the local venue server: in a background thread (:func:`serve`) or blocking (:func:`run_server`).

Binds only to loopback. ``serve`` pre-binds the socket (so ``port=0`` picks a free port and
the URL is known before uvicorn starts), waits for uvicorn's ``started`` flag and shuts
down cleanly on exit.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from pipelines.sandbox.venue_server.app import ServerState, build_app
from pipelines.sandbox.venue_server.faults import FaultSpec
from pipelines.sandbox.venue_server.scenario import Scenario, load_scenario

__all__ = ["ServerHandle", "run_server", "serve"]

log = logging.getLogger(__name__)


def _check_loopback(host: str) -> None:
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise ValueError(f"venue server binds to loopback only; got host={host!r} (use 127.0.0.1)")


def _http_impl() -> str:
    try:
        # probe: uvicorn's fast parser when the optional package is installed
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


@dataclass
class ServerHandle:
    """What :func:`serve` yields: ``base_url`` plus live server state for tests."""

    base_url: str
    host: str
    port: int
    state: ServerState

    @property
    def scenario(self) -> Scenario:
        return self.state.scenario

    def set_faults(self, spec: str | FaultSpec | None) -> None:
        """Swap the fault spec (RNG and counters restart from the new seed)."""
        assert self.state.faults is not None
        self.state.faults.set_spec(spec)

    @property
    def fault_counts(self) -> dict[str, int]:
        return dict(self.state.faults.counts) if self.state.faults else {}

    def reset_rate_limits(self, per_minute: float | None | str = "keep") -> None:
        if per_minute != "keep":
            self.state.limiter.per_minute = per_minute  # type: ignore[assignment]
        self.state.limiter.reset()


def _config(app: Any, *, log_level: str, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=not quiet,
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
        lifespan="off",
        http=_http_impl(),  # type: ignore[arg-type]
        loop="asyncio",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )


@contextmanager
def serve(
    scenario_dir: str | Path | Scenario,
    host: str = "127.0.0.1",
    port: int = 0,
    faults: str | FaultSpec | None = None,
    *,
    rate_limit_per_minute: float | None = 1200,
    startup_timeout: float = 10.0,
    log_level: str = "warning",
    routes: list[Any] | None = None,
) -> Iterator[ServerHandle]:
    """Start the server in a background thread; yield a :class:`ServerHandle`; stop on exit."""
    _check_loopback(host)
    sc = scenario_dir if isinstance(scenario_dir, Scenario) else load_scenario(scenario_dir)
    app, state = build_app(sc, faults=faults, rate_limit_per_minute=rate_limit_per_minute, routes=routes)
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (else Nagle + delayed ACK: +40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, log_level=log_level, quiet=True))
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - surfaced to the caller below
            errors.append(exc)

    thread = threading.Thread(target=_run, name=f"venue-server-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    try:
        while not server.started:
            if errors or not thread.is_alive():
                raise RuntimeError(f"venue server failed to start: {errors[0] if errors else 'thread exited'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"venue server not ready after {startup_timeout}s")
            time.sleep(0.01)
        yield ServerHandle(f"http://{host}:{bound_port}", host, bound_port, state)
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
        if thread.is_alive():
            log.warning("venue server thread did not stop within %ss", startup_timeout)


def run_server(
    scenario_dir: str | Path,
    port: int = 8765,
    faults: str | FaultSpec | None = None,
    *,
    host: str = "127.0.0.1",
    rate_limit_per_minute: float | None = 1200,
    log_level: str = "info",
    routes: list[Any] | None = None,
) -> None:
    """Blocking server for ``liqf serve --scenario DIR [--port N] [--faults SPEC]``."""
    _check_loopback(host)
    sc = load_scenario(scenario_dir)
    app, state = build_app(sc, faults=faults, rate_limit_per_minute=rate_limit_per_minute, routes=routes)
    spec = state.faults.spec if state.faults else None
    log.info(
        "serving scenario %s (%s) on http://%s:%d/info faults=%s",
        sc.name,
        sc.summary(),
        host,
        port,
        spec.describe() if spec else "none",
    )
    config = _config(app, log_level=log_level, quiet=False)
    config.host, config.port = host, port
    uvicorn.Server(config).run()
