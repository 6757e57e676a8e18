"""Which way imports run: the import-linter contracts in pyproject.toml hold, and each kind of
back edge breaks the contract that forbids it (and maybe others, through longer chains) (planted in a copy of the code, never in it)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
LAYERS = "proxy: each part imports only the parts below it"

LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def test_the_contracts_hold():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


@pytest.mark.parametrize(("module", "back_edge", "contract"), [
    ("proxy/gateway/relay.py", "from proxy.admin import dashboard", LAYERS),
    ("proxy/gateway/capture.py", "from proxy.cli import main", LAYERS),
    ("proxy/durability/spool.py", "from proxy.gateway import state", LAYERS),
    ("proxy/config/settings.py", "from proxy.observability import metrics", LAYERS),
    ("proxy/observability/logs.py", "from proxy.app import create_app", LAYERS),
    ("proxy/simulator/wire.py", "from proxy.gateway import sse",
     "the simulated upstream is a tool of its own: it imports nothing else of proxy"),
    ("proxy/gateway/upstream.py", "from proxy.simulator import wire", "only the CLI starts the simulated upstream"),
    ("billing/report.py", "from billing.db import tables",
     "billing never imports proxy, and its domain (outside billing.db) never the database adapters"),
    ("billing/db/ledger.py", "from proxy.gateway import sse",
     "billing never imports proxy, and its domain (outside billing.db) never the database adapters"),
    ("billing/pricing.py", "import sqlalchemy",
     "the domain imports no web or database library: only billing.db and proxy may"),
    ("billing/usage.py", "import aiohttp", "aiohttp is proxy's alone"),
])
def test_a_back_edge_breaks_its_contract(tmp_path, module, back_edge, contract):
    for package in ("proxy", "billing"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / module
    planted.write_text(planted.read_text() + f"\n{back_edge}  # planted by the test\n")

    done = subprocess.run([sys.executable, "-c", LINT], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)

    report = " ".join(done.stdout.split())  # contract names wrap across lines
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{contract} BROKEN" in report, report
    assert f"{module[:-3].replace('/', '.')} ->" in report  # and it names the importing module
