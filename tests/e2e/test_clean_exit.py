"""A test run that uses the CLI in-process on the embedded PostgreSQL ends without a
traceback: the library's clean-up at exit used to log into a capture stream pytest had
closed ("--- Logging error --- ValueError: I/O operation on closed file")."""

import os
import subprocess
import sys

INNER_TEST = '''
from proxy.cli import main


def test_cli_on_the_embedded_postgres(tmp_path, monkeypatch):
    monkeypatch.setenv("BILLING_PROXY_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["tenants", "create", "exit-check"]) == 0
    assert main(["tenants", "list"]) == 0
'''


def test_a_run_ends_without_logging_errors(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output
    assert "Logging error" not in output and "Traceback" not in output, output
