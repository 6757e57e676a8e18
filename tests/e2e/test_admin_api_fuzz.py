"""schemathesis, driven by the admin API's own OpenAPI document, against a running proxy:
no 5xx, and no response that contradicts the schema (every check on).

A short run with a fixed seed keeps CI reproducible; `scripts/fuzz-admin-api.sh` runs the
long, randomly seeded one."""

import os
import subprocess
import sys

from tests.processes import environment, free_port, serve


def test_schemathesis_finds_nothing(database_url, tmp_path):
    port, token = free_port(), "fuzz-" + "f" * 24
    server = serve(environment(DATABASE_URL=database_url, BILLING_PROXY_ADMIN_TOKEN=token,
                               BILLING_PROXY_HOME=str(tmp_path),
                               # schemathesis sends wrong tokens on purpose; the guard would answer 429 to all
                               BILLING_PROXY_ADMIN_FAILURES_PER_MINUTE="1000000"), port)
    try:
        schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
        run = subprocess.run(
            [schemathesis, "run", f"http://127.0.0.1:{port}/admin/openapi.json", "-H", f"Authorization: Bearer {token}",
             "--checks", "all", "--max-examples", "25", "--seed", "20261124", "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"},
        )
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "No issues found" in run.stdout
    finally:
        server.stop()
