"""deploy/local/system.sh: the one list of system packages for make setup and CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from support.postgres import PostgresError, locked_major, pg_bin

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "system.sh"
LOCK = ROOT / "deploy" / "local" / "system.lock"


def _path_without(missing: str, fakes: dict[str, str] | None = None) -> str:
    """A PATH of one world-readable temporary folder: every program of this PATH as a
    symlink, except ``missing``, and ``fakes`` (name -> shell script) in place of the real
    ones. Its dpkg-query knows no package unless ``fakes`` has one: the packages it lacks
    are the ones this PATH lacks, whatever this machine has installed."""
    bindir = Path(tempfile.mkdtemp(prefix="system-sh-"))
    bindir.chmod(0o755)
    fakes = {"dpkg-query": "exit 1", **(fakes or {})}
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


def _run(
    path: str, *args: str, user: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """system.sh ``args`` with only ``path`` on PATH (and ``env``'s further variables)."""
    # A copy beside the tools: the checkout may sit where another user cannot read it.
    script = Path(path) / "system.sh"
    shutil.copy(SCRIPT, script)
    script.chmod(0o755)
    if not (Path(path) / "system.lock").exists():
        shutil.copy(LOCK, Path(path) / "system.lock")
    prefix = [] if user is None else [shutil.which("runuser") or "runuser", "-u", user, "--"]
    return subprocess.run(
        [*prefix, "/bin/bash", str(script), *args],
        env={**os.environ, **(env or {}), "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


PARTS = ("make", "Java", "Maven", "Python", "promtool", "PostgreSQL", "OpenSSL", "valgrind")


def _summary(stdout: str) -> dict[str, str]:
    """The "system parts:" line as part -> what was found."""
    (line,) = [line for line in stdout.splitlines() if line.startswith("system parts: ")]
    items = line.removeprefix("system parts: ").split(", ")
    return dict(item.split(" ", 1) for item in items)


def test_this_machine_has_every_part_in_range_and_at_the_lock() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = _summary(result.stdout)
    assert tuple(found) == PARTS
    for part, version in found.items():
        assert re.fullmatch(r"[0-9]+(\.[0-9]+)+[a-z]?", version), (part, version)
    assert found["Python"] == _locked_python()  # Debian's, whatever python3 PATH has first
    assert found["Java"] == _locked_java()  # Debian's, whatever JAVA_HOME or java PATH has


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


def _locked_java() -> str:
    """The release of system.lock's openjdk-17-jre-headless (17.0.21.1 of 17.0.21.1+2-1~deb12u1)."""
    return _locked()["openjdk-17-jre-headless"].split("+", 1)[0]


def _jvm(folder: Path, version: str) -> Path:
    """A stand-in JVM folder whose ``bin/java -version`` says ``version``."""
    java = folder / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2026-01-20' >&2\n")
    java.chmod(0o755)
    folder.chmod(0o755)
    return folder


@pytest.mark.parametrize("version", ["11.0.2", "25.0.1", "17.0.15"])
def test_the_java_checked_is_the_jvm_make_runs_maven_and_the_broker_with(version: str) -> None:
    """``JVM`` (make's JAVA_HOME, default Debian's OpenJDK 17 folder) names it, and it must be
    the lock's release: an older Java, a newer one (a Temurin 25 beside Debian's, say) and
    another build of 17 are all refused."""
    jvm = _jvm(Path(tempfile.mkdtemp(prefix="system-sh-jvm-")), version)
    result = _run(_path_without(""), "--check", env={"JVM": str(jvm)})
    assert result.returncode == 1
    needs = f"needs {_locked_java()}, system.lock's openjdk-17-jre-headless"
    assert (
        f"system.sh: Java: found {version}, {needs} (Debian package openjdk-17-jre-headless)"
        in result.stderr.splitlines()
    )


def test_a_java_first_on_path_or_a_machines_java_home_is_not_the_one_checked() -> None:
    """What the machine puts first (a newer JDK on PATH, JAVA_HOME set to it) is not read:
    the JVM checked is Debian's, at the lock's release."""
    other = _jvm(Path(tempfile.mkdtemp(prefix="system-sh-jvm-")), "25.0.1")
    path = _path_without("java", {"java": f'exec {other}/bin/java "$@"'})
    result = _run(path, "--check", env={"JAVA_HOME": str(other)})
    assert _summary(result.stdout)["Java"] == _locked_java()
    assert "Java:" not in result.stderr


def test_make_runs_java_from_debians_jvm_whatever_java_home_the_machine_sets() -> None:
    """make exports JAVA_HOME (Maven, kafka.sh and the tests' broker read it) as Debian's
    OpenJDK 17 folder, system.sh's default JVM, over a JAVA_HOME of the machine's own."""
    result = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "--eval", "jh: ; @echo $(JAVA_HOME)", "jh"],
        env={**os.environ, "JAVA_HOME": "/opt/temurin-25"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert result.stdout.strip() == f"/usr/lib/jvm/java-17-openjdk-{arch}"
    version = subprocess.run(
        [f"{result.stdout.strip()}/bin/java", "-version"], capture_output=True, text=True
    ).stderr
    assert f'version "{_locked_java()}"' in version


def _locked_python() -> str:
    """The upstream release of system.lock's python3.11 (3.11.2 of 3.11.2-6+deb12u9)."""
    return _locked()["python3.11"].rsplit("-", 1)[0]


@pytest.mark.parametrize("version", ["3.12.4", "3.11.7"])
def test_the_python_checked_is_the_one_make_builds_the_venv_with(version: str) -> None:
    """``PY`` (make's variable, default Debian's python3.11) names it, and it must be the
    lock's release: another minor is refused, and so is another 3.11 (a pyenv build, say)."""
    fake = f'case "$*" in *version_info*) echo {version};; esac'
    result = _run(_path_without("", {"python-other": fake}), "--check", env={"PY": "python-other"})
    assert result.returncode == 1
    needs = f"needs {_locked_python()}, system.lock's python3.11 (Debian package python3-venv)"
    assert f"system.sh: Python: found {version}, {needs}" in result.stderr.splitlines()


def test_the_interpreter_older_than_the_lock_is_installed_again() -> None:
    """Debian's python3.11 and its venv module are held like a part's own package: an
    image's older build of them is installed again at the lock's."""
    older = "3.11.2-6+deb12u1"
    dpkg = _dpkg_query(**{"python3.11": older, "python3.11-venv": older})
    result = _run(_path_without("", {"dpkg-query": dpkg}), "--check")
    assert result.returncode == 1
    assert "system.sh: older than system.lock's versions: python3.11 python3.11-venv (" in (
        result.stderr
    )


@pytest.mark.parametrize(("venv", "removed"), [("3.11.7 (pyenv)", True), ("3.11.2 (deb)", False)])
def test_a_venv_of_another_interpreter_is_built_again(
    tmp_path: Path, venv: str, removed: bool
) -> None:
    """make's ``venv-python`` (a step of ``make setup``) removes a .venv whose interpreter
    is not ``PY``'s, so that setup builds it again with ``PY``; one of ``PY``'s is kept."""
    for path, version in (
        (tmp_path / ".venv" / "bin" / "python", venv),
        (tmp_path / "py", "3.11.2 (deb)"),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\necho '{version}'\n")
        path.chmod(0o755)
    result = subprocess.run(
        [
            "make",
            "-s",
            "-f",
            str(ROOT / "Makefile"),
            "-C",
            str(tmp_path),
            "venv-python",
            f"PY={tmp_path / 'py'}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".venv").exists() is not removed
    assert ("building it again" in result.stdout) is removed


def _apt(inst: str, log: Path | None = None) -> str:
    """A stand-in for apt-get: its simulation (-s) prints the ``Inst`` lines ``inst``;
    ``log`` records each call's arguments, and the status file each simulation was given."""
    record = "" if log is None else f'echo "$*" >> {log}; '
    record += (
        ""
        if log is None
        else (
            'for a in "$@"; do case "$a" in Dir::State::status=*) '
            f'wc -c < "${{a#*=}}" >> {log};; esac; done; '
        )
    )
    return f"""{record}case "$*" in *-s*) printf '{inst}';; esac"""


def _lock(path: str, *lines: str) -> None:
    (Path(path) / "system.lock").write_text("# a lock\n" + "".join(f"{line}\n" for line in lines))


def _locked() -> dict[str, str]:
    rows = [line.split() for line in LOCK.read_text().splitlines() if not line.startswith("#")]
    assert all(len(row) == 2 for row in rows), rows
    return dict((name, version) for name, version in rows)


def test_the_lock_names_every_part_at_one_exact_version() -> None:
    locked = _locked()
    rows = [line for line in LOCK.read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == len(locked)  # each package once
    assert rows == sorted(rows)
    parts = re.findall(r"^part (\S+) (\S+) ", SCRIPT.read_text(), re.MULTILINE)
    packages = [package for _, package in parts]
    assert tuple(name for name, _ in parts) == PARTS
    assert set(packages) <= set(locked), packages
    for name, version in locked.items():
        assert re.fullmatch(r"[0-9][A-Za-z0-9.+~:-]*", version), (name, version)
    assert "prometheus" in locked and "libc6" in locked  # dependencies too, down to the base


def test_plan_pins_everything_apt_would_install_to_the_locks_version() -> None:
    inst = (
        "Inst libjs-moment (2.30.1-1 Debian:12 [amd64])\\n"
        "Inst prometheus [2.33.0] (2.42.0+ds-5+deb12u1 Debian:12 [amd64])\\n"
    )
    path = _path_without("promtool", {"apt-get": _apt(inst)})
    _lock(path, "libjs-moment 2.29.4+ds-1", "prometheus 2.42.0+ds-5+deb12u1", "other 1.0")
    result = _run(path, "--plan")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        "libjs-moment=2.29.4+ds-1 prometheus=2.42.0+ds-5+deb12u1"
    )


def test_a_package_the_lock_does_not_name_is_refused() -> None:
    inst = "Inst prometheus (2.42.0 Debian:12 [amd64])\\nInst libnew1 (1.0 Debian:12 [amd64])\\n"
    path = _path_without("promtool", {"apt-get": _apt(inst)})
    _lock(path, "prometheus 2.42.0")
    result = _run(path, "--plan")
    assert result.returncode == 1
    assert "system.sh: apt would install libnew1, which" in result.stderr
    assert "--lock" in result.stderr


def test_lock_writes_what_apt_resolves_on_a_machine_without_the_packages(
    tmp_path: Path,
) -> None:
    log = tmp_path / "apt.log"
    inst = "Inst zlib1g (1:1.2.13 Debian:12 [amd64])\\nInst adduser (3.134 Debian:12 [amd64])\\n"
    path = _path_without("", {"apt-get": _apt(inst, log)})
    _lock(path, "stale 0")
    result = _run(path, "--lock")
    assert result.returncode == 0, result.stderr
    lock = (Path(path) / "system.lock").read_text().splitlines()
    assert [line for line in lock if not line.startswith("#")] == [
        "adduser 3.134",
        "zlib1g 1:1.2.13",
    ]
    simulation = next(line for line in log.read_text().splitlines() if " -s " in f" {line} ")
    for package in ("make", "openjdk-17-jre-headless", "maven", "prometheus", "postgresql"):
        assert package in simulation.split()
    assert "0" in log.read_text().splitlines()  # the status it was given: an empty one


def _dpkg_query(**installed: str) -> str:
    """A stand-in for dpkg-query -W: a line per named package it has (name -> version)."""
    cases = "".join(
        f"{name}) echo '{name} install ok installed {version}';; "
        for name, version in installed.items()
    )
    return f'for a in "$@"; do case "$a" in {cases}esac; done'


def _apt_cache(**sources: str) -> str:
    """A stand-in for ``apt-cache show NAME=VERSION...``: a record per argument, with a
    ``Source`` field for each named package (name -> "source (release)"); the others are
    their own source, at their own version."""
    cases = "".join(f"{name}) echo 'Source: {source}';; " for name, source in sources.items())
    return (
        'for a in "$@"; do n="${a%%=*}"; printf "Package: %s\\nVersion: %s\\n" "$n" "${a#*=}"; '
        f'case "$n" in {cases}esac; echo; done'
    )


def _older_openssl(tmp_path: Path, libssl_dev: str) -> tuple[str, Path]:
    """A machine whose image has OpenSSL and libssl-dev older than the lock's, where apt
    would move libssl-dev to a build of ``libssl_dev`` (its apt-cache "source (release)")."""
    locked = _locked()
    log = tmp_path / "apt.log"
    inst = (
        "Inst libssl-dev [3.0.1-1] (3.0.22-1 Debian:12 [amd64]) []\\n"
        "Inst libssl3 [3.0.1-1] (3.0.22-1 Debian:12 [amd64])\\n"
        "Inst openssl [3.0.1-1] (3.0.22-1 Debian:12 [amd64])\\n"
    )
    dpkg = _dpkg_query(openssl="3.0.1-1", libssl3="3.0.1-1")
    cache = _apt_cache(**{"libssl-dev": libssl_dev, "libssl3": f"openssl ({locked['openssl']})"})
    fakes = {"apt-get": _apt(inst, log), "dpkg-query": dpkg, "apt-cache": cache}
    return _path_without("", fakes), log


def test_a_part_older_than_the_lock_is_installed_again_at_the_locks_version(
    tmp_path: Path,
) -> None:
    """An image's own OpenSSL older than the lock's is planned at the lock's version; its
    library, a dependency older too, is left to apt; a sibling the lock does not name that
    the machine has moves along at its build of the locked OpenSSL release."""
    locked = _locked()
    path, log = _older_openssl(tmp_path, f"openssl ({locked['openssl']})")
    check = _run(path, "--check")
    assert check.returncode == 1
    assert "system.sh: older than system.lock's versions: openssl (" in check.stderr
    assert "libssl3" not in check.stderr  # a dependency needs only to satisfy its part
    plan = _run(path, "--plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.split()[-3:] == [
        "libssl-dev=3.0.22-1",
        f"libssl3={locked['libssl3']}",
        f"openssl={locked['openssl']}",
    ]
    simulation = next(line for line in log.read_text().splitlines() if " -s " in f" {line} ")
    assert f"openssl={locked['openssl']}" in simulation.split()  # resolved at the lock's


def test_a_sibling_apt_would_move_to_another_release_is_refused(tmp_path: Path) -> None:
    """A sibling the lock does not name moves only to its build of a source release the
    lock holds: a build of another OpenSSL release, whatever apt serves, stops the install
    with the way out, before apt installs anything."""
    path, log = _older_openssl(tmp_path, "openssl (3.0.23-1)")
    plan = _run(path, "--plan")
    assert plan.returncode == 1
    assert "system.sh: apt would move libssl-dev 3.0.22-1 (this machine's), a build of no" in (
        plan.stderr
    )
    assert "--lock" in plan.stderr
    install = _run(path)
    assert install.returncode == 1
    assert not [line for line in log.read_text().splitlines() if line.startswith("install")]


def test_a_locked_build_debian_no_longer_serves_is_named_with_the_way_out() -> None:
    apt = 'echo "E: a version of $* was not found" >&2; exit 100'
    dpkg = _dpkg_query(openssl="3.0.1-1")
    result = _run(_path_without("", {"apt-get": apt, "dpkg-query": dpkg}), "--plan")
    assert result.returncode == 1
    assert "system.sh: apt-get cannot resolve system.lock's versions of openssl" in result.stderr
    assert "--lock" in result.stderr


def test_a_part_newer_than_the_lock_stops_setup_before_apt(tmp_path: Path) -> None:
    log = tmp_path / "apt.log"
    path = _path_without("", {"apt-get": _apt("", log), "dpkg-query": _dpkg_query(maven="9.9-1")})
    result = _run(path)
    assert result.returncode == 1
    assert f"    maven 9.9-1 (system.lock: {_locked()['maven']})" in result.stderr.splitlines()
    assert "does not downgrade" in result.stderr and "--lock" in result.stderr
    assert not log.exists()  # nothing asked of apt


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root")
def test_without_root_it_prints_the_one_command_and_stops() -> None:
    inst = "Inst maven (3.9.9-1 Debian:12 [all])\\n"
    result = _run(_path_without("mvn", {"apt-get": _apt(inst)}), user="nobody")
    assert result.returncode == 1
    command = re.search(r"sudo sh -c '(apt-get update && .*apt-get install -y .*)'", result.stderr)
    assert command, result.stderr
    assert f"maven={_locked()['maven']}" in command.group(1).split()


def test_a_wrong_argument_prints_usage() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("usage:")


def _postgres_lib(tmp_path: Path, *majors: str) -> Path:
    """A stand-in for Debian's /usr/lib/postgresql with an initdb of each of ``majors``."""
    lib = tmp_path / "postgresql"
    for major in majors:
        bindir = lib / major / "bin"
        bindir.mkdir(parents=True)
        (bindir / "initdb").write_text(f"#!/bin/sh\necho 'initdb (PostgreSQL) {major}.3'\n")
        (bindir / "initdb").chmod(0o755)
    lib.mkdir(exist_ok=True)
    return lib


def _check_with(lib: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), "--check"],
        env={**os.environ, "POSTGRESQL_LIB": str(lib)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_postgresql_used_is_the_locks_major_even_beside_a_newer_one(tmp_path: Path) -> None:
    """A machine's newer PostgreSQL is not taken instead of the lock's; one that has only
    another major lacks the package, so setup installs the lock's."""
    major = locked_major()
    newer = str(int(major) + 3)
    both = _check_with(_postgres_lib(tmp_path / "both", major, newer))
    assert _summary(both.stdout)["PostgreSQL"] == f"{major}.3", both.stdout
    alone = _check_with(_postgres_lib(tmp_path / "alone", newer))
    assert alone.returncode == 1
    assert _summary(alone.stdout)["PostgreSQL"] == "missing"
    assert "system.sh: missing Debian packages: postgresql" in alone.stderr


def test_the_store_tests_server_is_the_locks_major_too(tmp_path: Path) -> None:
    """tests/support/postgres.py picks what system.sh checks: the lock's major, never the
    newest a machine has."""
    major = locked_major()
    assert f"postgresql-{major} " in LOCK.read_text()
    lib = _postgres_lib(tmp_path / "both", major, str(int(major) + 3))
    assert pg_bin(lib) == lib / major / "bin"
    with pytest.raises(PostgresError, match=f"no PostgreSQL {major}"):
        pg_bin(_postgres_lib(tmp_path / "alone", str(int(major) + 3)))
