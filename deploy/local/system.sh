#!/usr/bin/env bash
# The machine's system parts that `make setup`, `make test`, `make demo` and CI need, from
# Debian's packages. The one list of them: `make setup` runs this script and so does .ci/run.
#
#   system.sh           install what is missing, and system.lock's version of each part the
#                       machine has at an older one (as root, with apt-get); otherwise print
#                       the one command that would and exit 1; then check
#   system.sh --check   only check: what is missing, every part's version, and its package's
#                       against the lock (exit 1 when anything is missing, outside its range
#                       or not at the lock's version)
#   system.sh --plan    print the apt-get command that would install what is missing and
#                       the parts older than the lock, every package apt would bring in
#                       pinned to system.lock's version
#   system.sh --lock    rewrite system.lock: what apt would install today on a machine that
#                       has none of the packages below (a deliberate change: review the diff,
#                       run make test, commit it)
#
# Each prints one line, "system parts: ...", with the version of each part found.
# system.lock (beside this script; SYSTEM_LOCK names another) is the lock of the Debian
# packages: each package the parts below need, with its dependencies, at one exact version.
# What this script installs it installs at those versions, and it refuses to add a package
# the lock does not name. The parts a machine already has (its image's) are held to the
# lock too: a part's own package that dpkg has installed at an older version is installed
# again at the lock's (with what is missing, in one apt-get call), so that every machine
# runs the same builds of them; what they depend on needs only to satisfy them, and a
# package of the machine's that apt must move with them, unnamed by the lock (a sibling
# built from the same source, libssl-dev beside libssl3), moves only to its build of the
# source release the lock holds (never to whatever build apt serves). A part at a newer
# version stops the script, which never downgrades a machine: the lock is behind it, and
# --lock moves it. The ranges below are checked besides, for the programs found on PATH,
# which need not be Debian's; Java and Python are Debian's own (make's JAVA_HOME and PY),
# at the lock's release. Debian's mirrors keep only the newest builds of a release, so
# a locked version can stop being served; apt then refuses it, and this script says to run
# --lock.
#
#   part        version from          needed          Debian package: why
#   make        make --version        any             make
#   Java        $JVM/bin/java         system.lock's   openjdk-17-jre-headless: runs Maven and
#               -version              build (17.0.    the broker (JVM: make's JAVA_HOME, by
#                                     21.1)           default Debian's OpenJDK 17 folder, so
#                                                     every machine runs the same JVM, whatever
#                                                     JAVA_HOME or java on PATH it has)
#   Maven       mvn -v                3.6.3 or newer  maven: fetches the broker's jars (its
#                                                     maven-dependency-plugin 3.8.1 needs 3.6.3)
#   Python      $PY: its version,     system.lock's   python3-venv: builds .venv (PY: make's,
#               and import venv,      python3.11      default Debian's python3.11, held with
#               ensurepip             (3.11.2)        python3.11-venv at system.lock's builds,
#                                                     so every machine's .venv runs the same
#                                                     interpreter, whatever python3 it has)
#   promtool    promtool --version    2.x             prometheus: alert rule tests, scrape test
#   PostgreSQL  initdb --version      system.lock's   postgresql: the store tests' server (the
#               (/usr/lib/postgresql/ major (its      initdb tests/support/postgres.py picks;
#               <major>, else on      postgresql-N    the deployment runs it too); another
#               PATH when there is    package)        major beside it is never used, one
#               no such folder)                       alone means the lock's is installed
#   OpenSSL     openssl version       1.1.1 or newer  openssl: the SASL_SSL broker's test CA
#                                                     (openssl req -addext needs 1.1.1)
#   valgrind    valgrind --version    3.16 or newer   valgrind: counts the instructions of the
#                                                     core and the floor (make bench, and
#                                                     the test of that benchmark)
set -euo pipefail

mode=install
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --plan) mode=plan ;;
    --lock) mode=lock ;;
    *) echo "usage: $(basename "$0") [--check | --plan | --lock]" >&2; exit 2 ;;
esac
LOCK="${SYSTEM_LOCK:-$(cd "$(dirname "$0")" && pwd)/system.lock}"
# locked NAME: system.lock's version of the Debian package NAME (nothing when it has none).
locked() { awk -v p="$1" '$1 == p && !/^#/ { print $2 }' "$LOCK"; }

# The interpreter that builds .venv: Debian's, the one system.lock holds (make passes its PY).
PY="${PY:-/usr/bin/python3.11}"
# The JVM that runs Maven and the broker: Debian's OpenJDK 17, the one system.lock holds (make
# passes its JAVA_HOME; a JAVA_HOME of the machine's own is not read).
JVM="${JVM:-/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture 2>/dev/null || echo amd64)}"

has() { command -v "$1" >/dev/null 2>&1; }
python_ready() { has "$PY" && "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; }
java_ready() { [[ -x "$JVM/bin/java" ]]; }
initdb_found() { [[ -n "$(initdb_path)" ]]; }

# The first dotted version number in stdin ("openjdk version "17.0.15" 2025-04-15" gives
# 17.0.15; "promtool, version 2.42.0+ds" gives 2.42.0; "OpenSSL 1.1.1w" gives 1.1.1w).
first_version() { grep -o -m 1 -E '[0-9]+(\.[0-9]+)+[a-z]?' | head -n 1 || true; }

java_version() { "$JVM/bin/java" -version 2>&1 | grep -m 1 ' version "' | first_version; }
# mvn prints colour resets even for -v -B.
maven_version() {
    mvn -v -B 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | grep -m 1 '^Apache Maven' | first_version
}
python_version() { "$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }
promtool_version() { promtool --version 2>&1 | first_version; }
openssl_version() { openssl version 2>/dev/null | first_version; }
make_version() { make --version 2>/dev/null | first_version; }
valgrind_version() { valgrind --version 2>/dev/null | first_version; }

# The PostgreSQL major version of system.lock (its postgresql-N package): the one server
# the store tests run, whatever other majors a machine has beside it.
PG_MAJOR="$(awk '$1 ~ /^postgresql-[0-9]+$/ { sub(/^postgresql-/, "", $1); print $1; exit }' \
    "$LOCK" 2>/dev/null || true)"
# The Python of system.lock: its python3.11 package's upstream version (3.11.2 of
# 3.11.2-6+deb12u9), the one version PY may be.
PY_LOCKED="$(locked python3.11 2>/dev/null || true)"
PY_LOCKED="${PY_LOCKED%-*}"
# The Java of system.lock: its openjdk-17-jre-headless package's release (17.0.21.1 of
# 17.0.21.1+2-1~deb12u1), the one version the JVM may be.
JAVA_LOCKED="$(locked openjdk-17-jre-headless 2>/dev/null || true)"
JAVA_LOCKED="${JAVA_LOCKED%%+*}"

# Debian's PostgreSQL folder (POSTGRESQL_LIB names another, for this script's tests).
PG_LIB="${POSTGRESQL_LIB:-/usr/lib/postgresql}"

# The initdb the store tests run (tests/support/postgres.py picks the same): Debian's of
# the lock's major; on a machine without Debian's folder, the one on PATH.
initdb_path() {
    if [[ -n "$PG_MAJOR" && -x "$PG_LIB/$PG_MAJOR/bin/initdb" ]]; then
        echo "$PG_LIB/$PG_MAJOR/bin/initdb"
    elif [[ ! -d "$PG_LIB" ]]; then
        command -v initdb 2>/dev/null || true
    fi
}
postgresql_version() { initdb_found && "$(initdb_path)" --version 2>/dev/null | first_version; }

# at_least FOUND MIN: FOUND is MIN or newer (version order, as sort -V has it).
at_least() { [[ "$(printf '%s\n' "$2" "$1" | sort -V | head -n 1)" == "$2" ]]; }
# in_series FOUND SERIES: FOUND is SERIES or SERIES.<anything> (2 takes 2.42.0, not 20.1).
in_series() { [[ "$1" == "$2" || "$1" == "$2".* ]]; }
# exactly FOUND WANT: FOUND is WANT.
exactly() { [[ "$1" == "$2" ]]; }

packages=() # the Debian package of every part, the roots of the lock
missing=()  # Debian packages to install
wrong=()    # "part: found X, needs Y (Debian package P)"
found=()    # "part X" for the summary line

# part NAME PACKAGE PRESENT VERSION NEEDED [TEST ARG]: one row of the table above. PRESENT
# is a command (split into words on purpose), VERSION a function printing the version.
part() {
    local name="$1" package="$2" present="$3" version_of="$4" needed="$5"
    local test="${6:-}" arg="${7:-}" version
    version="$($version_of || true)"
    packages+=("$package")
    # shellcheck disable=SC2086
    if ! $present; then
        missing+=("$package")
        if [[ -n "$version" ]]; then
            found+=("$name $version without $package")
        else
            found+=("$name missing")
        fi
        return
    fi
    found+=("$name ${version:-(version unknown)}")
    if [[ -n "$test" ]] && { [[ -z "$version" ]] || ! "$test" "$version" "$arg"; }; then
        wrong+=("$name: found ${version:-no version}, needs $needed (Debian package $package)")
    fi
}

part make make "has make" make_version any
part Java openjdk-17-jre-headless java_ready java_version \
    "$JAVA_LOCKED, system.lock's openjdk-17-jre-headless" exactly "$JAVA_LOCKED"
part Maven maven "has mvn" maven_version "3.6.3 or newer" at_least 3.6.3
part Python python3-venv python_ready python_version "$PY_LOCKED, system.lock's python3.11" \
    exactly "$PY_LOCKED"
part promtool prometheus "has promtool" promtool_version 2.x in_series 2
part PostgreSQL postgresql initdb_found postgresql_version "$PG_MAJOR.x" in_series "$PG_MAJOR"
part OpenSSL openssl "has openssl" openssl_version "1.1.1 or newer" at_least 1.1.1
part valgrind valgrind "has valgrind" valgrind_version "3.16 or newer" at_least 3.16

# The packages that are the parts themselves: each part's own, PostgreSQL's server of the
# lock's major (the postgresql package only depends on it), and the interpreter that builds
# .venv with its venv module (python3-venv only depends on them). The machine must have
# these at system.lock's versions; what they depend on needs only to satisfy them.
held=("${packages[@]}" python3.11 python3.11-venv)
if [[ -n "$PG_MAJOR" ]]; then held+=("postgresql-$PG_MAJOR"); fi

# off_lock: "name installed locked" for each held package that dpkg has installed at
# another version than system.lock's (none on a machine without dpkg).
off_lock() {
    [[ -r "$LOCK" ]] && has dpkg-query || return 0
    { dpkg-query -W -f='${Package} ${Status} ${Version}\n' "${held[@]}" 2>/dev/null || true; } |
        awk 'NR == FNR { if ($1 !~ /^#/) lock[$1] = $2; next }
             $4 == "installed" && ($1 in lock) && $5 != lock[$1] { print $1, $5, lock[$1] }' \
            "$LOCK" -
}

older=() # held packages installed at an older version: installed again at the lock's
newer=() # "name X (system.lock: Y)": held packages installed at a newer version
while read -r name have want; do
    if dpkg --compare-versions "$have" lt "$want"; then
        older+=("$name")
    else
        newer+=("$name $have (system.lock: $want)")
    fi
done < <(off_lock)

summary() {
    local IFS='|' joined
    joined="${found[*]}"
    echo "system parts: ${joined//|/, }"
}

# The way out of every stop the lock causes: refresh it, deliberately.
RELOCK="run \`bash $0 --lock\` (as root), review its diff, run make test, commit it"

report_older() {
    echo "system.sh: older than system.lock's versions: ${older[*]}" \
        "(system.sh, as root, installs the lock's)" >&2
}

report_newer() {
    local line
    echo "system.sh: this machine has newer Debian packages than $LOCK names:" >&2
    for line in "${newer[@]}"; do echo "    $line" >&2; done
    echo "system.sh: the lock is behind this machine, and this script does not downgrade" \
        "packages: $RELOCK" >&2
}

report_wrong() {
    local line
    for line in "${wrong[@]}"; do echo "system.sh: $line" >&2; done
    echo "system.sh: the project works with the versions in the table of $0;" \
        "Debian 12 (bookworm) has them all" >&2
}

# "name version how" for each package apt-get's simulation of "$@" would install (its Inst
# lines: "Inst NAME [OLD] (VERSION ...)"), how being "upgrade" for a package the machine
# has at OLD and "new" for one it lacks; further apt-get options come first.
simulated() {
    apt-get -s -qq --no-install-recommends "$@" |
        sed -n -e 's/^Inst \([^ ]*\) \[[^]]*\] (\([^ ]*\) .*/\1 \2 upgrade/p' \
            -e 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1 \2 new/p'
}


# builds NAME=VERSION...: "name version source source-version" for each build apt has a
# record of (a record without a Source field is its own source, at its own version).
builds() {
    apt-cache show "$@" 2>/dev/null | awk '
        function out() { if (p != "") print p, v, (s == "" ? p : s), (sv == "" ? v : sv); p = "" }
        /^Package: / { out(); p = $2; v = ""; s = ""; sv = "" }
        /^Version: / { v = $2 }
        /^Source: / { s = $2; if (NF > 2) { sv = $3; gsub(/[()]/, "", sv) } }
        END { out() }'
}

# pins PACKAGE...: sets `pins` to "name=version" for every package apt would install for
# PACKAGE... at system.lock's versions here: the lock's version of each, but for a package
# the machine has and the lock does not name (a sibling of a locked one, such as
# libssl-dev beside libssl3), listed in `along`. A sibling is held to the lock through its
# source: it moves only to its build of a source release the lock holds a package of
# (libssl-dev of the openssl release libssl3 is locked at), never to whatever build apt
# serves. Fails naming any other package the lock lacks, and any sibling apt would move
# to a build of another release.
pins=()
along=()
pins() {
    local name version how want targets=() unlocked=() plan
    [[ -r "$LOCK" ]] || { echo "system.sh: $LOCK not found" >&2; return 1; }
    for name in "$@"; do
        want="$(locked "$name")"
        targets+=("$name${want:+=$want}")
    done
    if ! plan="$(simulated install "${targets[@]}")"; then
        echo "system.sh: apt-get cannot resolve system.lock's versions of $*" \
            "(Debian may serve newer builds now): $RELOCK" >&2
        return 1
    fi
    while read -r name version how; do
        [[ -n "$name" ]] || continue
        want="$(locked "$name")"
        if [[ -n "$want" ]]; then
            pins+=("$name=$want")
        elif [[ "$how" == upgrade ]]; then
            pins+=("$name=$version")
            along+=("$name $version")
        else
            unlocked+=("$name")
        fi
    done <<<"$plan"
    if [ "${#unlocked[@]}" -ne 0 ]; then
        echo "system.sh: apt would install ${unlocked[*]}, which $LOCK does not name;" \
            "$RELOCK" >&2
        return 1
    fi
    [ "${#along[@]}" -eq 0 ] || siblings_locked
}

# siblings_locked: fails naming each package of `along` whose build is not of a source
# release system.lock holds (or that apt has no record of).
siblings_locked() {
    local strays
    strays="$(awk 'FILENAME == ARGV[1] { held[$3 " " $4]; next }
                   FILENAME == ARGV[2] { if (($3 " " $4) in held) ok[$1 " " $2]; next }
                   !($0 in ok)' \
        <(builds $(awk '!/^#/ && NF == 2 { print $1 "=" $2 }' "$LOCK")) \
        <(builds "${along[@]/ /=}") <(printf '%s\n' "${along[@]}") | tr '\n' ' ')"
    if [ -n "$strays" ]; then
        echo "system.sh: apt would move ${strays% } (this machine's), a build of no source" \
            "release $LOCK holds; $RELOCK" >&2
        return 1
    fi
}

if [ "$mode" = lock ]; then
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; fi
    empty="$(mktemp)"
    {
        echo "# Debian packages deploy/local/system.sh installs, each at one exact version: its"
        echo "# parts' packages and their dependencies, as apt resolves them on a machine without"
        echo "# any of them. Written by \`bash deploy/local/system.sh --lock\`; roots:"
        echo "# ${packages[*]}"
        simulated -o Dir::State::status="$empty" install "${packages[@]}" | cut -d ' ' -f 1,2 | sort
    } >"$LOCK.new"
    rm -f "$empty"
    mv "$LOCK.new" "$LOCK"
    echo "system.sh: wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)" >&2
    exit 0
fi

if [ "${#newer[@]}" -ne 0 ]; then
    summary
    report_newer
    exit 1
fi

if [ "${#missing[@]}" -eq 0 ] && [ "${#older[@]}" -eq 0 ]; then
    summary
    if [ "${#wrong[@]}" -ne 0 ]; then
        report_wrong
        exit 1
    fi
    exit 0
fi

if [ "$mode" = check ]; then
    summary
    if [ "${#missing[@]}" -ne 0 ]; then
        echo "system.sh: missing Debian packages: ${missing[*]}" >&2
    fi
    if [ "${#older[@]}" -ne 0 ]; then report_older; fi
    if [ "${#wrong[@]}" -ne 0 ]; then report_wrong; fi
    exit 1
fi
if [ "$(id -u)" -eq 0 ] && [ "$mode" = install ]; then apt-get update -qq; fi
pins "${missing[@]}" "${older[@]}"
install_cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pins[*]}"
if [ "$mode" = plan ]; then
    echo "$install_cmd"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    if [ "${#missing[@]}" -ne 0 ]; then echo "system.sh: this machine lacks: ${missing[*]}" >&2; fi
    if [ "${#older[@]}" -ne 0 ]; then report_older; fi
    echo "system.sh: install them once as root, at system.lock's versions, then run make again:" >&2
    echo "    sudo sh -c 'apt-get update && $install_cmd'" >&2
    exit 1
fi

echo "system.sh: installing Debian packages at system.lock's versions: missing:" \
    "${missing[*]:-none}; older than the lock: ${older[*]:-none}" \
    "(${#pins[@]} packages with dependencies)" >&2
if [ "${#along[@]}" -ne 0 ]; then
    echo "system.sh: moving along with them, at their builds of the locked source" \
        "releases: ${along[*]} (this machine's, which system.lock does not name)" >&2
fi
# apt-get marks every package it is named as installed by hand: what was not (a dependency
# of another, or one the machine had only for another's sake) is marked back afterwards.
manual_before=" $(apt-mark showmanual 2>/dev/null | tr '\n' ' ') "
# The prometheus and postgresql packages would start servers of their own: keep package
# scripts from starting services (this machine needs only their programs).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pins[@]}" >&2; then
    echo "system.sh: apt-get could not install the versions $LOCK names" \
        "(Debian may serve newer builds now): $RELOCK" >&2
    exit 1
fi
# Named to pin their versions, the dependencies stay marked as installed for another's sake.
deps=()
for pin in "${pins[@]}"; do
    name="${pin%%=*}"
    [[ " ${missing[*]} " == *" $name "* || "$manual_before" == *" $name "* ]] || deps+=("$name")
done
if [ "${#deps[@]}" -ne 0 ]; then apt-mark auto "${deps[@]}" >/dev/null; fi

# Installing checks nothing by itself: the same tests again, versions included.
bash "$0" --check
