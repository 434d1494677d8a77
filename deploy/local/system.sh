#!/usr/bin/env bash
# The machine's system parts that `make setup`, `make test`, `make demo` and CI need, from
# Debian's packages. The one list of them: `make setup` runs this script and so does .ci/run.
#
#   system.sh           install what is missing (as root, with apt-get), at the exact
#                       versions of system.lock; otherwise print the one command that would
#                       install it and exit 1; then check the versions
#   system.sh --check   only check: what is missing, and every part's version (exit 1 when
#                       anything is missing or outside its range)
#   system.sh --plan    print the apt-get command that would install what is missing, every
#                       package apt would bring in pinned to system.lock's version
#   system.sh --lock    rewrite system.lock: what apt would install today on a machine that
#                       has none of the packages below (a deliberate change: review the diff,
#                       run make test, commit it)
#
# Each prints one line, "system parts: ...", with the version of each part found.
# system.lock (beside this script; SYSTEM_LOCK names another) is the lock of the Debian
# packages: each package the parts below need, with its dependencies, at one exact version.
# What this script installs it installs at those versions, and it refuses to install a
# package the lock does not name. Parts a machine already has (its image's) are used as
# they are, within the ranges below. Debian's mirrors keep only the newest builds of a
# release, so a locked version can stop being served; apt then refuses it, and this script
# says to run --lock.
#
#   part        version from          needed          Debian package: why
#   make        make --version        any             make
#   Java        java -version         17 or newer     openjdk-17-jre-headless: runs the broker
#   Maven       mvn -v                3.6.3 or newer  maven: fetches the broker's jars (its
#                                                     maven-dependency-plugin 3.8.1 needs 3.6.3)
#   Python      $PY: its version,     3.11.x          python3-venv: builds .venv (PY: make's,
#               and import venv,                      default python3; the lock and the image
#               ensurepip                             are made for 3.11)
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

PY="${PY:-python3}"

has() { command -v "$1" >/dev/null 2>&1; }
python_ready() { has "$PY" && "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; }
initdb_found() { [[ -n "$(initdb_path)" ]]; }

# The first dotted version number in stdin ("openjdk version "17.0.15" 2025-04-15" gives
# 17.0.15; "promtool, version 2.42.0+ds" gives 2.42.0; "OpenSSL 1.1.1w" gives 1.1.1w).
first_version() { grep -o -m 1 -E '[0-9]+(\.[0-9]+)+[a-z]?' | head -n 1 || true; }

java_version() { java -version 2>&1 | grep -m 1 ' version "' | first_version; }
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
part Java openjdk-17-jre-headless "has java" java_version "17 or newer" at_least 17
part Maven maven "has mvn" maven_version "3.6.3 or newer" at_least 3.6.3
part Python python3-venv python_ready python_version 3.11.x in_series 3.11
part promtool prometheus "has promtool" promtool_version 2.x in_series 2
part PostgreSQL postgresql initdb_found postgresql_version "$PG_MAJOR.x" in_series "$PG_MAJOR"
part OpenSSL openssl "has openssl" openssl_version "1.1.1 or newer" at_least 1.1.1
part valgrind valgrind "has valgrind" valgrind_version "3.16 or newer" at_least 3.16

summary() {
    local IFS='|' joined
    joined="${found[*]}"
    echo "system parts: ${joined//|/, }"
}

report_wrong() {
    local line
    for line in "${wrong[@]}"; do echo "system.sh: $line" >&2; done
    echo "system.sh: the project works with the versions in the table of $0;" \
        "Debian 12 (bookworm) has them all" >&2
}

# "name version" for each package apt-get's simulation of "$@" would install (its Inst
# lines: "Inst NAME [OLD] (VERSION ...)"); further apt-get options come first.
simulated() {
    apt-get -s -qq --no-install-recommends "$@" | sed -n 's/^Inst \([^ ]*\) .*(\([^ ]*\) .*/\1 \2/p'
}

locked() { awk -v p="$1" '$1 == p && !/^#/ { print $2 }' "$LOCK"; }

# pins PACKAGE...: sets `pins` to "name=version" (system.lock's) for every package apt would
# install for them here; fails naming any the lock lacks.
pins=()
pins() {
    local name _version version unlocked=()
    [[ -r "$LOCK" ]] || { echo "system.sh: $LOCK not found" >&2; return 1; }
    while read -r name _version; do
        version="$(locked "$name")"
        if [[ -n "$version" ]]; then
            pins+=("$name=$version")
        else
            unlocked+=("$name")
        fi
    done < <(simulated install "$@")
    if [ "${#unlocked[@]}" -ne 0 ]; then
        echo "system.sh: apt would install ${unlocked[*]}, which $LOCK does not name;" \
            "run \`bash $0 --lock\` (as root), review its diff, run make test, commit it" >&2
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
        simulated -o Dir::State::status="$empty" install "${packages[@]}" | sort
    } >"$LOCK.new"
    rm -f "$empty"
    mv "$LOCK.new" "$LOCK"
    echo "system.sh: wrote $LOCK ($(grep -vc '^#' "$LOCK") packages)" >&2
    exit 0
fi

if [ "${#missing[@]}" -eq 0 ]; then
    summary
    if [ "${#wrong[@]}" -ne 0 ]; then
        report_wrong
        exit 1
    fi
    exit 0
fi

if [ "$mode" = check ]; then
    summary
    echo "system.sh: missing Debian packages: ${missing[*]}" >&2
    if [ "${#wrong[@]}" -ne 0 ]; then report_wrong; fi
    exit 1
fi
if [ "$(id -u)" -eq 0 ] && [ "$mode" = install ]; then apt-get update -qq; fi
pins "${missing[@]}"
install_cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pins[*]}"
if [ "$mode" = plan ]; then
    echo "$install_cmd"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system.sh: this machine lacks: ${missing[*]}" >&2
    echo "system.sh: install them once as root, at system.lock's versions, then run make again:" >&2
    echo "    sudo sh -c 'apt-get update && $install_cmd'" >&2
    exit 1
fi

echo "system.sh: installing Debian packages: ${missing[*]} (${#pins[@]} with dependencies, as locked)" >&2
# The prometheus package would start a server of its own: keep package scripts from
# starting services (this machine only needs the promtool binary).
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
    echo "system.sh: apt-get could not install the versions $LOCK names (Debian may serve" \
        "newer builds now): run \`bash $0 --lock\`, review its diff, run make test, commit it" >&2
    exit 1
fi
# Named to pin their versions, the dependencies stay marked as installed for another's sake.
deps=()
for pin in "${pins[@]}"; do
    [[ " ${missing[*]} " == *" ${pin%%=*} "* ]] || deps+=("${pin%%=*}")
done
if [ "${#deps[@]}" -ne 0 ]; then apt-mark auto "${deps[@]}" >/dev/null; fi

# Installing checks nothing by itself: the same tests again, versions included.
bash "$0" --check
