#!/usr/bin/env bash
# The machine's system parts that `make setup`, `make test`, `make demo` and CI need, from
# Debian's packages. The one list of them: `make setup` runs this script and so does .ci/run.
#
#   system.sh           install what is missing (as root, with apt-get); otherwise print the
#                       one command that would install it and exit 1
#   system.sh --check   only report what is missing (exit 1 when anything is)
#
#   what             checked by                          Debian package
#   make             command -v make                     make
#   Java 17 (JRE)    command -v java                     openjdk-17-jre-headless (runs the broker)
#   Maven            command -v mvn                      maven (fetches the broker's jars)
#   Python venv      python3 -c 'import venv, ensurepip' python3-venv (builds .venv)
#   promtool         command -v promtool                 prometheus (alert rule tests, scrape test)
#   PostgreSQL       /usr/lib/postgresql/*/bin/initdb    postgresql (the store tests' server)
#   openssl          command -v openssl                  openssl (the SASL_SSL broker's test CA)
set -euo pipefail

check_only=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    *) echo "usage: $(basename "$0") [--check]" >&2; exit 2 ;;
esac

missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
    echo "system.sh: missing Debian packages: ${missing[*]}" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system.sh: this machine lacks: ${missing[*]}" >&2
    echo "system.sh: install them once as root, then run make again:" >&2
    echo "    sudo sh -c '$install_cmd'" >&2
    exit 1
fi

echo "system.sh: installing Debian packages: ${missing[*]}" >&2
apt-get update -qq
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
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2

# Installing checks nothing by itself: the same tests again.
bash "$0" --check
