"""pyproject.toml's pins of everything the direct dependencies bring in, from uv.lock.

An install that reads pyproject.toml alone (`pip install .`, `pip install -e .[dev]`,
`pip install --group testcontainers`) resolves every package it does not find pinned there,
and would take the newest its range allows. So each list of pyproject.toml names, below its
hand-pinned direct dependencies, every other package of its closure at the version uv.lock
has, between two marker comments this script writes (markers of platform-only packages
kept):

    lock_closure.py --strip   empty the written lines (before `uv lock`, so that re-locking,
                              `UPGRADE=--upgrade` included, may move what is not pinned by hand)
    lock_closure.py --write   write them from uv.lock (after it)
    lock_closure.py --check   exit 1 naming the lists whose lines are not uv.lock's

`make lock` runs --strip, `uv lock`, --write and `uv lock` again; tests/test_lock.py runs
--check. Run with the project's Python (`.venv/bin/python`): it calls the uv beside it.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
UV = Path(sys.executable).parent / "uv"

# Each list of pyproject.toml with written lines, and the `uv export` arguments that give
# its closure; a list also leaves out what an earlier list of the same install holds (the
# dev extra is installed with the dependencies).
LISTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dependencies": (("--no-dev",), ()),
    "dev": (("--no-dev", "--extra", "dev"), ("dependencies",)),
    "build": (("--only-group", "build"), ()),
    "testcontainers": (("--only-group", "testcontainers"), ()),
}
INDENT = "    "


def begin(name: str) -> str:
    return f"{INDENT}# {name}: what the pins above bring in, as uv.lock has it (make lock writes)"


def end(name: str) -> str:
    return f"{INDENT}# {name}: end of what make lock writes"


def _block(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?ms)^{re.escape(begin(name))}\n(.*?)^{re.escape(end(name))}$",
    )


@functools.cache
def _exported(args: tuple[str, ...]) -> dict[str, str]:
    """Canonical name -> ``name==version[; marker]`` of each package `uv export` lists; each
    export runs once a run (callers change a copy)."""
    command = [str(UV), "export", "--frozen", "--no-emit-project", "--no-header", "--no-hashes"]
    result = subprocess.run(
        [*command, "--offline", "--quiet", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement, _, marker = (part.strip() for part in line.partition(";"))
        text = f"{requirement}; {marker}" if marker else requirement
        lines[_canonical(requirement.split("==", 1)[0])] = text
    return lines


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _named(text: str, name: str) -> set[str]:
    """The packages pyproject's list ``name`` pins by hand (outside the written lines)."""
    project = tomllib.loads(text)
    if name == "dependencies":
        entries = project["project"]["dependencies"]
    elif name == "dev":
        entries = project["project"]["optional-dependencies"]["dev"]
    else:
        entries = project["dependency-groups"][name]
    return {
        _canonical(re.split(r"[\s\[=<>!~;]", entry, maxsplit=1)[0])
        for entry in entries
        if isinstance(entry, str)
    }


def written(text: str) -> dict[str, list[str]]:
    """Each list's lines as uv.lock has them: its closure, less what it pins by hand and
    what the lists installed with it hold."""
    stripped = strip(text)
    out: dict[str, list[str]] = {}
    for name, (args, with_) in LISTS.items():
        closure = dict(_exported(args))
        for other in with_:
            for key in _exported(LISTS[other][0]):
                closure.pop(key, None)
        for key in _named(stripped, name):
            closure.pop(key, None)
        out[name] = [f'{INDENT}"{closure[key]}",' for key in sorted(closure)]
    return out


def _replace(text: str, name: str, lines: list[str]) -> str:
    pattern = _block(name)
    if pattern.search(text) is None:
        raise SystemExit(f"lock_closure.py: pyproject.toml has no lines marked for {name!r}")
    body = "".join(line + "\n" for line in lines)
    return pattern.sub(lambda _: f"{begin(name)}\n{body}{end(name)}", text, count=1)


def strip(text: str) -> str:
    for name in LISTS:
        text = _replace(text, name, [])
    return text


def fill(text: str) -> str:
    for name, lines in written(text).items():
        text = _replace(text, name, lines)
    return text


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ("--strip", "--write", "--check"):
        print("usage: lock_closure.py --strip | --write | --check", file=sys.stderr)
        return 2
    text = PYPROJECT.read_text()
    if argv[0] == "--strip":
        PYPROJECT.write_text(strip(text))
    elif argv[0] == "--write":
        PYPROJECT.write_text(fill(text))
    elif fill(text) != text:
        stale = [n for n, lines in written(text).items() if _replace(text, n, lines) != text]
        listed = ", ".join(stale)
        print(f"pyproject.toml's pins of {listed} are not uv.lock's: make lock", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
