"""Running billing-proxy commands as real processes in tests."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """`billing-proxy ARGS...` in the background; its output goes to a file (a pipe that
    nobody reads would block it once full)."""

    def __init__(self, env: dict[str, str], *args: str):
        self.log = tempfile.TemporaryFile()
        self.popen = subprocess.Popen([sys.executable, "-m", "proxy.cli", *args], env=env, stdout=self.log,
                                      stderr=self.log)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_for(self, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.popen.poll() is None, self.output()
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, f"{url} did not come up:\n{self.output()}"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=30)
        finally:
            self.final_output = self.output()
            self.log.close()


def serve(env: dict[str, str], port: int) -> Process:
    process = Process(env, "serve", "--port", str(port))
    process.wait_for(f"http://127.0.0.1:{port}/readyz")
    return process


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "proxy.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def environment(**overrides: str) -> dict[str, str]:
    """This process's environment, with the simulator's knobs forwarded by the proxy."""
    return {**os.environ, "BILLING_PROXY_FORWARD_HEADERS": "x-sim-*", **overrides}
