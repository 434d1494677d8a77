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


def _path_without(missing: str, fakes: dict[str, str] | None = None) -> str:
    """A PATH of one world-readable temporary folder: every program of this PATH as a
    symlink, except ``missing``, and ``fakes`` (name -> shell script) in place of the real
    ones."""
    bindir = Path(tempfile.mkdtemp(prefix="system-sh-"))
    bindir.chmod(0o755)
    fakes = fakes or {}
    for name, body in fakes.items():
        (bindir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bindir / name).chmod(0o755)
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bindir / entry.name
            if entry.name == missing or target.exists() or target.is_symlink():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
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


PARTS = ("make", "Java", "Maven", "Python", "promtool", "PostgreSQL", "OpenSSL")


def _summary(stdout: str) -> dict[str, str]:
    """The "system parts:" line as part -> what was found."""
    (line,) = [line for line in stdout.splitlines() if line.startswith("system parts: ")]
    items = line.removeprefix("system parts: ").split(", ")
    return dict(item.split(" ", 1) for item in items)


def test_this_machine_has_everything_in_range() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = _summary(result.stdout)
    assert tuple(found) == PARTS
    for part, version in found.items():
        assert re.fullmatch(r"[0-9]+(\.[0-9]+)+[a-z]?", version), (part, version)


def test_the_header_table_lists_every_part() -> None:
    rows = [line for line in SCRIPT.read_text().splitlines() if line.startswith("#   ")]
    named = [row.split()[1] for row in rows if row.split()[1] in PARTS]
    assert named == list(PARTS)


def test_check_names_the_missing_package() -> None:
    result = _run(_path_without("promtool"), "--check")
    assert result.returncode == 1
    assert "prometheus" in result.stderr
    assert _summary(result.stdout)["promtool"] == "missing"


@pytest.mark.parametrize(
    ("tool", "script", "message"),
    [
        (
            "java",
            """echo 'openjdk version "11.0.2" 2019-01-15' >&2""",
            "Java: found 11.0.2, needs 17 or newer (Debian package openjdk-17-jre-headless)",
        ),
        (
            "promtool",
            "echo 'promtool, version 3.1.0 (branch: HEAD)'",
            "promtool: found 3.1.0, needs 2.x (Debian package prometheus)",
        ),
        (
            "openssl",
            "echo 'OpenSSL 1.1.0l  10 Sep 2019'",
            "OpenSSL: found 1.1.0l, needs 1.1.1 or newer (Debian package openssl)",
        ),
    ],
)
def test_a_version_out_of_range_is_named_with_the_range(
    tool: str, script: str, message: str
) -> None:
    result = _run(_path_without(tool, {tool: script}), "--check")
    assert result.returncode == 1
    assert f"system.sh: {message}" in result.stderr.splitlines()


def test_the_python_checked_is_the_one_make_builds_the_venv_with() -> None:
    """``PY`` (make's variable, default python3) names it: another minor is refused."""
    path = _path_without("", {"python3.12": 'case "$*" in *version_info*) echo 3.12.4;; esac'})
    script = Path(path) / "system.sh"
    shutil.copy(SCRIPT, script)
    result = subprocess.run(
        ["bash", str(script), "--check"],
        env={**os.environ, "PATH": path, "PY": "python3.12"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "system.sh: Python: found 3.12.4, needs 3.11.x" in result.stderr


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
