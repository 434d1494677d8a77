"""uv.lock agrees with pyproject.toml, its exports are exactly it, and .venv is the lock.

The lock is made by `make lock` (uv lock, then uv export to requirements.txt,
requirements-runtime.txt, requirements-build.txt and requirements-testcontainers.txt, which pip
installs); these checks need no network, so a pyproject edit without a re-lock, an export
edited by hand, or an environment that drifted from the lock fails here.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.txt"
RUNTIME_LOCK = ROOT / "requirements-runtime.txt"
BUILD_LOCK = ROOT / "requirements-build.txt"
# The opt-in group for KAFKA_PROVIDER=testcontainers: `make setup-testcontainers` adds it.
TESTCONTAINERS_LOCK = ROOT / "requirements-testcontainers.txt"
UV = Path(sys.executable).parent / "uv"


def _uv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), *args, "--offline", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _entries(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_the_lock_agrees_with_pyproject() -> None:
    result = _uv("lock", "--check", "--python", "3.11")
    assert result.returncode == 0, f"uv.lock is stale, run make lock: {result.stderr}"


def test_re_locking_sees_the_index_as_of_one_instant() -> None:
    """`uv lock` resolves against the index as it stood at pyproject's ``exclude-newer``, an
    exact UTC instant the lock records too, so re-locking on another machine or day gives
    the same versions; and no file the lock names was uploaded after it (a cutoff behind
    the lock would make the next re-lock move versions back)."""
    cutoff = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["exclude-newer"]
    at = datetime.fromisoformat(cutoff)
    assert cutoff.endswith("Z") and at.utcoffset() == timedelta(0), cutoff
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert lock["options"]["exclude-newer"] == cutoff
    uploads = [
        (package["name"], datetime.fromisoformat(file["upload-time"]))
        for package in lock["package"]
        for file in [
            *package.get("wheels", []),
            *([package["sdist"]] if "sdist" in package else []),
        ]
        if "upload-time" in file
    ]
    assert len(uploads) > 100  # the registry's files carry their upload times
    assert [name for name, uploaded in uploads if uploaded > at] == []


def test_the_exports_are_exactly_the_lock() -> None:
    for path, args in (
        (LOCK, ("--all-extras", "--all-groups", "--no-group", "testcontainers")),
        (RUNTIME_LOCK, ("--no-dev",)),
        (BUILD_LOCK, ("--only-group", "build")),
        (TESTCONTAINERS_LOCK, ("--only-group", "testcontainers")),
    ):
        result = _uv("export", "--frozen", "--no-emit-project", *args)
        assert result.returncode == 0, result.stderr
        assert _entries(result.stdout) == _entries(path.read_text()), f"run make lock: {path}"


def _pins(lock: Path = LOCK) -> dict[str, list[tuple[str, str, int]]]:
    """name -> [(version, marker, number of hashes)] as the lock pins them."""
    pins: dict[str, list[tuple[str, str, int]]] = {}
    # Entries are "name==version [; marker] \" followed by "--hash=..." lines.
    for entry in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
        if entry.startswith("#") or not entry.strip():
            continue
        head = entry.split("\\", 1)[0].strip()
        requirement, _, marker = head.partition(";")
        name, _, version = requirement.strip().partition("==")
        pins.setdefault(canonicalize_name(name), []).append(
            (version.strip(), marker.strip(), entry.count("--hash=sha256:"))
        )
    return pins


def _direct_requirements() -> list[Requirement]:
    """Every requirement pyproject.toml names: the direct ones and the closure pins below
    them (``test_an_install_that_reads_pyproject_alone_resolves_nothing``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["dev"],
        *project["dependency-groups"]["build"],
        *project["dependency-groups"]["tools"],
        *project["dependency-groups"]["testcontainers"],
    ]
    # A group's ``{include-group = ...}`` entries are listed above under their own group.
    return [Requirement(text) for text in texts if isinstance(text, str)]


def _applies(marker: str) -> bool:
    if not marker:
        return True
    return Marker(marker).evaluate(dict(default_environment()))


def test_every_lock_entry_is_exact_and_hashed() -> None:
    pins = _pins()
    assert len(pins) > 20
    exports = (RUNTIME_LOCK, BUILD_LOCK, TESTCONTAINERS_LOCK)
    for name, entries in [*pins.items(), *(i for e in exports for i in _pins(e).items())]:
        for version, _, hashes in entries:
            assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"{name}: not pinned exactly"
            assert hashes >= 1, f"{name}=={version} has no hash"


def test_every_direct_requirement_is_locked_within_its_range() -> None:
    pins = {**_pins(TESTCONTAINERS_LOCK), **_pins()}
    for requirement in _direct_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is in pyproject.toml but not in the lock: make lock"
        for version, _, _ in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"the lock pins {name}=={version}, outside pyproject's {requirement.specifier}:"
                " make lock"
            )


def test_the_runtime_lock_is_the_runtime_part_of_the_lock() -> None:
    full, runtime = _pins(), _pins(RUNTIME_LOCK)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for text in project["project"]["dependencies"]:
        assert canonicalize_name(Requirement(text).name) in runtime, f"{text} not in the image"
    for name, entries in runtime.items():
        assert name in full, f"{name} is in the runtime lock only"
        versions = {version for version, _, _ in full[name]}
        assert {version for version, _, _ in entries} <= versions, f"{name}: versions differ"
    for dev_tool in ("pytest", "mypy", "ruff", "hypothesis"):
        assert dev_tool not in runtime


def test_every_direct_requirement_is_pinned_to_exactly_its_locked_version() -> None:
    """No install may pick the newest version a range allows, not even one that reads
    pyproject.toml itself (`pip install .`, `uv sync`): each direct requirement names one
    exact version, the lock's."""
    pins = {**_pins(TESTCONTAINERS_LOCK), **_pins()}
    for requirement in _direct_requirements():
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{requirement}: not one version"
        locked = {version for version, _, _ in pins[canonicalize_name(requirement.name)]}
        assert locked == {specs[0].version}, f"{requirement}: the lock has {locked}"


def _named(texts: list[object]) -> dict[str, tuple[str, str]]:
    """name -> (version, marker) of each requirement of a pyproject list."""
    named = {}
    for text in texts:
        if isinstance(text, str):
            requirement = Requirement(text)
            (spec,) = requirement.specifier
            named[canonicalize_name(requirement.name)] = (
                spec.version,
                str(requirement.marker or ""),
            )
    return named


def _exported(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, marker) of each entry of an export (one version each)."""
    exported = {}
    for name, entries in _pins(path).items():
        ((version, marker, _),) = entries
        exported[name] = (version, str(Marker(marker)) if marker else "")
    return exported


def test_an_install_that_reads_pyproject_alone_resolves_nothing(tmp_path: Path) -> None:
    """`pip install .`, `pip install -e .[dev]` or `pip install --group testcontainers` on a
    fresh machine gets what `make setup` gets: each list of pyproject.toml pins its whole
    closure, every package the lock installs with it, at the lock's version and marker, so
    pip has nothing left to resolve (the newest a range allows)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = _named(pyproject["project"]["dependencies"])
    dev = _named(pyproject["project"]["optional-dependencies"]["dev"])
    with_dev = _uv("export", "--frozen", "--no-emit-project", "--no-dev", "--extra", "dev")
    assert with_dev.returncode == 0, with_dev.stderr
    (tmp_path / "dev.txt").write_text(with_dev.stdout)
    assert runtime == _exported(RUNTIME_LOCK)
    assert {**runtime, **dev} == _exported(tmp_path / "dev.txt")
    for group, export in (("build", BUILD_LOCK), ("testcontainers", TESTCONTAINERS_LOCK)):
        assert _named(pyproject["dependency-groups"][group]) == _exported(export), group


def test_make_lock_writes_those_pins_as_they_stand() -> None:
    """deploy/local/lock_closure.py, which `make lock` runs around `uv lock`, writes the
    closure pins exactly as pyproject.toml has them (a re-lock changes nothing else), and
    strips them before the resolution."""
    spec = importlib.util.spec_from_file_location(
        "lock_closure", ROOT / "deploy" / "local" / "lock_closure.py"
    )
    assert spec is not None and spec.loader is not None
    closure = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(closure)
    text = (ROOT / "pyproject.toml").read_text()
    stripped = closure.strip(text)
    assert len(_named(tomllib.loads(stripped)["project"]["dependencies"])) < 20
    assert closure.fill(stripped) == text
    check = subprocess.run(
        [sys.executable, ROOT / "deploy" / "local" / "lock_closure.py", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr


def test_faust_is_bounded_to_the_versions_its_overrides_are_tested_against() -> None:
    (faust,) = [r for r in _direct_requirements() if r.name == "faust-streaming"]
    assert not faust.specifier.contains("0.16.0")
    assert faust.specifier.contains(metadata.version("faust-streaming"))


def test_the_testcontainers_group_is_opt_in_and_only_adds_packages() -> None:
    """`make setup` (requirements.txt) leaves the group out; `make setup-testcontainers`
    installs its export on top, which adds packages and never moves one `make setup` put in."""
    full, group = _pins(), _pins(TESTCONTAINERS_LOCK)
    assert "testcontainers" in group and "docker" in group
    assert "testcontainers" not in full and "docker" not in full
    assert "testcontainers" not in _pins(RUNTIME_LOCK)
    for name, entries in group.items():
        if name in full:
            assert {v for v, _, _ in entries} <= {v for v, _, _ in full[name]}, name
    makefile = (ROOT / "Makefile").read_text()
    install = "--require-hashes --no-deps --only-binary=:all: -r requirements-testcontainers.txt"
    setup_recipe = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    assert install in makefile and "testcontainers" not in setup_recipe


def test_installed_versions_are_the_locked_ones() -> None:
    pins = _pins()
    # The opt-in group is checked too where `make setup-testcontainers` installed it.
    if importlib.util.find_spec("testcontainers") is not None:
        pins = {**_pins(TESTCONTAINERS_LOCK), **pins}
    drift = []
    for name, entries in sorted(pins.items()):
        wanted = [version for version, marker, _ in entries if _applies(marker)]
        if not wanted:
            continue  # locked for other platforms only (colorama on Windows)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "nothing"
        if installed not in wanted:
            drift.append(f"{name}: {installed} installed, the lock says {wanted}")
    assert drift == [], "run make setup: " + "; ".join(drift)


def test_the_build_system_is_exactly_the_locked_backend() -> None:
    """The image builds the engine with the backend of requirements-build.txt (no build
    isolation); any build in an isolated environment installs build-system.requires, which
    must therefore be that same set, each at its locked version: no builder may pick the
    newest setuptools, wheel or packaging."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = _pins(BUILD_LOCK)
    required: dict[str, str] = {}
    for text in pyproject["build-system"]["requires"]:
        requirement = Requirement(text)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{text}: not one exact version"
        required[canonicalize_name(requirement.name)] = specs[0].version
    locked = {}  # (their hashes: test_every_lock_entry_is_exact_and_hashed)
    for name, entries in build.items():
        (version, _marker, _hashes), *more = entries
        assert not more, f"{name}: more than one version in {BUILD_LOCK.name}"
        locked[name] = version
    assert required == locked, f"build-system.requires is not {BUILD_LOCK.name}: make lock"


def _pip_installs(path: Path) -> list[list[str]]:
    """The arguments of every ``pip install`` in ``path`` (continuation lines joined)."""
    text = path.read_text().replace("\\\n", " ")
    return [m.split() for m in re.findall(r"pip install ([^\n&;|]*)", text)]


def test_every_install_takes_the_lock_and_resolves_nothing() -> None:
    """A fresh machine (`make setup`, the image) installs the lock's exports only, hash for
    hash and as wheels, and the engine itself without fetching a build backend: no ``pip
    install`` may let pip choose a version (the newest its range allows), and none may build
    a package from source, whose build backend pip would resolve itself."""
    exports = {p.name for p in (LOCK, RUNTIME_LOCK, BUILD_LOCK, TESTCONTAINERS_LOCK)}
    seen = 0
    for path in (ROOT / "Makefile", ROOT / "deploy" / "Dockerfile"):
        for args in _pip_installs(path):
            seen += 1
            assert "--no-deps" in args, f"{path.name}: pip install {' '.join(args)}"
            targets = [a for a in args if not a.startswith("-")]
            files = [args[i + 1] for i, a in enumerate(args) if a == "-r"]
            if "--require-hashes" in args:
                assert set(files) <= exports and set(targets) == set(files), args
                assert "--only-binary=:all:" in args, f"{path.name}: a source build: {args}"
            else:
                assert targets == ["."] and "--no-build-isolation" in args, args
    assert seen >= 5  # make setup's two, make setup-testcontainers', the image's two
