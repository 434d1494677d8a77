"""deploy/local/kafka.sh: the broker's jars are exactly those of kafka/jars.sha256.

Maven itself is exercised by the session's own fetch (the default cache, the one every test
broker runs from); the failures are provoked with a stand-in `mvn` on PATH that copies that
cache, altered, so they need neither the network nor a JVM.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "kafka.sh"
POM = ROOT / "deploy" / "local" / "kafka" / "pom.xml"
CHECKSUMS = ROOT / "deploy" / "local" / "kafka" / "jars.sha256"


def _run(
    *args: str, script: Path = SCRIPT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def session_lib() -> Path:
    """The lib/ of the default cache, as LocalJarBroker gets it (fetched if need be)."""
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_CACHE_DIR"}
    result = subprocess.run(
        ["bash", str(SCRIPT), "fetch"], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def _listed() -> dict[str, str]:
    lines = CHECKSUMS.read_text().splitlines()
    assert lines, f"{CHECKSUMS} is empty"
    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{64}  [A-Za-z0-9._+-]+\.jar", line), line
    names = [line.split("  ", 1)[1] for line in lines]
    assert names == sorted(names) and len(set(names)) == len(names), "not sorted or repeated"
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_committed_list_is_the_cache_the_tests_run(session_lib: Path) -> None:
    listed = _listed()
    version = re.search(r"<kafka.version>(.+)</kafka.version>", POM.read_text())
    assert version is not None
    assert f"kafka_2.13-{version.group(1)}.jar" in listed
    assert f"kafka-clients-{version.group(1)}.jar" in listed
    found = {path.name: _sha256(path) for path in session_lib.iterdir()}
    assert found == listed


def _fake_mvn(tmp_path: Path, source: Path, then: str = "") -> dict[str, str]:
    """A PATH whose `mvn` copies ``source`` where copy-dependencies would put the jars, then
    runs the shell commands ``then`` there."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    mvn = bindir / "mvn"
    mvn.write_text(
        "#!/usr/bin/env bash\nset -e\n"
        'for a in "$@"; do case "$a" in -DoutputDirectory=*) out="${a#*=}";; esac; done\n'
        f'mkdir -p "$out" && cp -p "{source}"/* "$out"/ && cd "$out"\n{then}\n'
    )
    mvn.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_a_fetch_is_checked_before_the_cache_is_marked_complete(
    tmp_path: Path, session_lib: Path
) -> None:
    names = sorted(_listed())
    altered, dropped = names[0], names[1]
    tamper = (
        f"printf x | dd of={altered} bs=1 seek=100 conv=notrunc status=none\n"
        f"rm {dropped}\necho 'not a jar' > extra.txt"
    )
    cache = tmp_path / "cache"
    env = {**_fake_mvn(tmp_path, session_lib, tamper), "KAFKA_CACHE_DIR": str(cache)}
    result = _run("fetch", env=env)
    assert result.returncode == 1
    assert result.stdout == ""  # no lib directory for a broker to use
    assert f"{altered}  different digest" in result.stderr
    assert f"{dropped}  missing" in result.stderr
    assert "extra.txt  extra: not in jars.sha256" in result.stderr
    assert not (cache / ".complete").exists()
    assert not (cache / "lib").exists() and not (cache / "lib.partial").exists()

    # The same fetch without the damage fills and marks the cache.
    (tmp_path / "ok").mkdir()
    env = {**_fake_mvn(tmp_path / "ok", session_lib), "KAFKA_CACHE_DIR": str(cache)}
    result = _run("fetch", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cache / "lib")
    pom_hash = hashlib.sha256(POM.read_bytes()).hexdigest()
    assert (cache / ".complete").read_text().strip() == pom_hash


def test_a_cache_changed_after_its_fetch_is_refused(tmp_path: Path, session_lib: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(session_lib, cache / "lib")
    shutil.copy(session_lib.parent / ".complete", cache / ".complete")
    env = {"KAFKA_CACHE_DIR": str(cache), "PATH": os.environ["PATH"]}
    assert _run("fetch", env=env).returncode == 0

    jar = cache / "lib" / sorted(_listed())[-1]
    data = bytearray(jar.read_bytes())
    data[len(data) // 2] ^= 0xFF
    jar.write_bytes(bytes(data))
    result = _run("fetch", env=env)
    assert result.returncode == 1 and result.stdout == ""
    assert f"{jar.name}  different digest" in result.stderr
    assert f"remove {cache}" in result.stderr

    shutil.copy(session_lib / jar.name, jar)
    (cache / "lib" / "zz-added.jar").write_bytes(b"PK")
    result = _run("fetch", env=env)
    assert result.returncode == 1
    assert "zz-added.jar  extra: not in jars.sha256" in result.stderr


def test_checksums_lists_what_maven_fetches(tmp_path: Path, session_lib: Path) -> None:
    """A copy of the script and its pom, without jars.sha256: fetch refuses to guess, and
    `checksums` writes the list (here from the stand-in Maven), the committed one."""
    here = tmp_path / "deploy" / "local"
    (here / "kafka").mkdir(parents=True)
    shutil.copy(SCRIPT, here / "kafka.sh")
    shutil.copy(POM, here / "kafka" / "pom.xml")
    env = {**_fake_mvn(tmp_path, session_lib), "KAFKA_CACHE_DIR": str(tmp_path / "cache")}

    result = _run("fetch", script=here / "kafka.sh", env=env)
    assert result.returncode == 1
    assert "jars.sha256 is missing: 'kafka.sh checksums' writes it" in result.stderr

    result = _run("checksums", script=here / "kafka.sh", env=env)
    assert result.returncode == 0, result.stderr
    assert (here / "kafka" / "jars.sha256").read_text() == CHECKSUMS.read_text()
    assert not (tmp_path / "cache").exists()  # the cache is fetch's alone


def test_a_wrong_argument_prints_usage() -> None:
    result = _run("bogus")
    assert result.returncode == 2
    assert "checksums" in result.stderr and result.stderr.startswith("usage:")


def test_up_runs_the_broker_on_java_home_s_jvm(tmp_path: Path) -> None:
    """`up` starts the broker with ``$JAVA_HOME/bin/java`` (make's: Debian's OpenJDK 17 of
    system.lock), as Maven picks its JVM, not with whatever java is first on PATH."""
    result = _run("up", env={"JAVA_HOME": str(tmp_path), "KAFKA_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 1
    assert f"kafka.sh: {tmp_path}/bin/java not found" in result.stderr
