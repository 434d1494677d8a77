"""The assembled command line: every command module registers, every command and action
answers ``--help``, and a mistake is a usage message and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine.cli
from engine.cli import build_parser, main
from engine.cli.main import COMMANDS

# The package's modules that are not commands.
_SHARED = {"__main__", "args", "main", "resources", "sending", "sim_rows"}


def _children(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _every_command_line() -> list[list[str]]:
    """Each command, and each action of the commands that have them."""
    lines: list[list[str]] = []
    for name, parser in _children(build_parser()).items():
        lines.append([name])
        lines += [[name, action] for action in _children(parser)]
    return lines


def test_every_command_module_registers_and_each_is_listed() -> None:
    modules = {m.name for m in pkgutil.iter_modules(engine.cli.__path__)} - _SHARED
    assert {m.__name__.rpartition(".")[2] for m in COMMANDS} == modules
    commands = set(_children(build_parser()))
    assert {"rate", "replay", "store", "query", "rebuild", "command", "worker", "sink"} <= commands
    for module in COMMANDS:
        sub = argparse.ArgumentParser().add_subparsers()
        module.register(sub)
        assert set(sub.choices) <= commands, module.__name__


@pytest.mark.parametrize("argv", _every_command_line(), ids=" ".join)
def test_help_of_every_command_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    assert f"usage: rating-engine {' '.join(argv)}" in capsys.readouterr().out


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_the_console_script_and_python_m_list_every_command() -> None:
    script = Path(sys.executable).with_name("rating-engine")
    for argv in ([str(script)], [sys.executable, "-m", "engine.cli"]):
        done = _run(*argv, "--help")
        assert done.returncode == 0, done.stderr
        for name in _children(build_parser()):
            assert name in done.stdout


def test_a_missing_argument_exits_2_with_the_usage() -> None:
    done = _run(sys.executable, "-m", "engine.cli", "rate", "--catalog", "c.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("usage: rating-engine rate")
    assert "the following arguments are required: --input" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["command"], "give a command"),
        (["demo", "--cdrs", "0"], "--cdrs and --sims must be >= 1"),
        (["rate", "--catalog", "c", "--input", "i", "--clickhouse", "chdb:///x"], "needs --store"),
        (["store", "stats", "--store", "postgresql://u:secret@h/db"], "carries a password"),
        (["store", "verify", "--store", "sqlite:///x.db", "--unkeyed-until", "-1"], ">= 0"),
    ],
)
def test_a_misuse_exits_2_with_usage_and_no_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: rating-engine")
    assert "rating-engine: error: " in err and message in err
    assert "Traceback" not in err


def test_a_bad_file_exits_1_with_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "check", str(tmp_path / "absent.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rating-engine: ") and "absent.yaml" in err
    assert "usage:" not in err and "Traceback" not in err
