"""`billing-proxy serve`: one server process, or a supervisor of N worker processes that
share one port through SO_REUSEPORT (the kernel spreads connections over them)."""

import gc
import logging
import os
import signal
import subprocess
import sys
import time

from aiohttp import web

from proxy.app import create_app
from proxy.config.settings import Settings

log = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 1.0


def run_server(settings: Settings, database_url: str, host: str, port: int, *, reuse_port: bool = False) -> None:
    """Serve until SIGTERM or SIGINT: then stop accepting, give in-flight calls
    `shutdown_grace` seconds, flush the ledger and return (exit status 0)."""
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works, a little slower
        uvloop = None
    app = create_app(settings, database_url)
    app.on_startup.append(_freeze_startup_objects)  # after the app's own start-up (its cleanup context)
    web.run_app(app, host=host, port=port, reuse_port=reuse_port or None,
                print=None, access_log=None, handler_cancellation=False, shutdown_timeout=settings.shutdown_grace,
                keepalive_timeout=settings.client_timeout,  # also bounds a client slow to send its headers
                loop=uvloop.new_event_loop() if uvloop else None)


async def _freeze_startup_objects(app: web.Application) -> None:
    """What start-up built (catalogs, prices, the ORM's tables, the libraries) lives as long
    as the process: kept out of the collector's sight, a full collection scans only what
    calls create. Measured under load: 4 ms at p50 instead of 36 ms, during which no call
    moves (the p99 at 16 connections went from about 30 ms to 11)."""
    gc.collect()
    gc.freeze()


def _die_with_parent() -> None:
    """In a worker, before it starts: SIGTERM it when the supervisor dies, however it dies
    (Linux; elsewhere a killed supervisor leaves its workers running)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_workers(workers: int, database_url: str, worker_args: list[str]) -> int:
    """Start `workers` copies of `billing-proxy ... serve --reuse-port`, restart one that dies,
    and pass SIGTERM / SIGINT on to all of them. Exit status 0 when all stopped cleanly."""
    env = {**os.environ, "DATABASE_URL": database_url}  # workers join the database prepared here
    command = [sys.executable, "-m", "proxy.cli", *worker_args]
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)

    processes = [start() for _ in range(workers)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        if all(p.poll() is not None for p in processes) and stopping:
            break
        for index, process in enumerate(processes):
            code = process.poll()
            if code is not None and not stopping:
                log.error("worker %d exited with status %s; starting another", process.pid, code)
                time.sleep(RESTART_PAUSE_SECONDS)
                processes[index] = start()
        time.sleep(0.2)
    codes = [p.returncode for p in processes]
    return 0 if all(code == 0 for code in codes) else 1
