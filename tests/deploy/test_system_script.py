"""deploy/local/system.sh: the one list of system packages for make setup and CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "system.sh"


def _path_without(missing: str) -> str:
    """A PATH (a world-readable temporary folder) with the script's tools as symlinks, except
    ``missing``."""
    bindir = Path(tempfile.mkdtemp(prefix="system-sh-"))
    bindir.chmod(0o755)
    for tool in ("make", "java", "mvn", "promtool", "python3", "id", "bash", "cat"):
        found = shutil.which(tool)
        if found and tool != missing:
            (bindir / tool).symlink_to(found)
    return str(bindir)


def _run(path: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    # A copy beside the tools: the checkout may sit where another user cannot read it.
    script = Path(path) / "system.sh"
    shutil.copy(SCRIPT, script)
    script.chmod(0o755)
    prefix = [] if user is None else [shutil.which("runuser") or "runuser", "-u", user, "--"]
    return subprocess.run(
        [*prefix, "/bin/bash", str(script), *args],
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_this_machine_has_everything() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_check_names_the_missing_package() -> None:
    result = _run(_path_without("promtool"), "--check")
    assert result.returncode == 1
    assert "prometheus" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_without_root_it_prints_the_one_command_and_stops() -> None:
    result = _run(_path_without("mvn"), user="nobody")
    assert result.returncode == 1
    # (python3-venv may be listed too: this machine's python3 lives under /root.)
    command = re.search(r"sudo sh -c '(apt-get update && .*apt-get install -y .*)'", result.stderr)
    assert command, result.stderr
    assert "maven" in command.group(1).split()


def test_a_wrong_argument_prints_usage() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("usage:")
