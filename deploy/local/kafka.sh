#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1,
# built from jars that Maven fetches from Maven Central: no Docker, no tarball download.
#
#   kafka.sh fetch    fetch the broker's jars into the cache (no Maven run when already
#                     there) and check them against kafka/jars.sha256; prints the lib
#                     directory on stdout, everything else goes to stderr
#   kafka.sh checksums  write kafka/jars.sha256 from the jars Maven fetches for kafka/pom.xml
#                     now (after a version change in the pom; review the diff, commit both)
#   kafka.sh up       fetch if needed, format storage once, start the broker, wait until it answers
#   kafka.sh down     stop it (SIGTERM, then SIGKILL after 30 s); fine when it is not running
#   kafka.sh status   exit 0 when it is up and answering, 1 when not
#
# Environment:
#   KAFKA_CACHE_DIR         jar cache   (default $HOME/.cache/rating-engine/kafka-<version>)
#   KAFKA_DATA_DIR          data, logs, pid, config (default $HOME/.cache/rating-engine/kafka-data)
#   KAFKA_PORT              PLAINTEXT listener port (default 19092)
#   KAFKA_CONTROLLER_PORT   KRaft controller port   (default 19093)
#   KAFKA_PYTHON            Python with confluent_kafka for the liveness check
#                           (default <repo>/.venv/bin/python, else python3)
#   KAFKA_START_TIMEOUT     seconds `up` waits for the broker to answer (default 60)
#   JAVA_HOME               the JVM that runs Maven and the broker (make sets Debian's
#                           OpenJDK 17 of system.lock; unset, the first java on PATH)
#
# engine/local/jar_broker.py (the broker of the tests, the benchmarks and the demo) calls
# `kafka.sh fetch` so that this file stays the one place that knows about Maven.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
POM="$HERE/kafka/pom.xml"
CHECKSUMS="$HERE/kafka/jars.sha256"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
[[ -n "$KAFKA_VERSION" ]] || { echo "kafka.sh: no <kafka.version> in $POM" >&2; exit 1; }

CACHE_DIR="${KAFKA_CACHE_DIR:-$HOME/.cache/rating-engine/kafka-$KAFKA_VERSION}"
LIB="$CACHE_DIR/lib"
DATA_DIR="${KAFKA_DATA_DIR:-$HOME/.cache/rating-engine/kafka-data}"
PORT="${KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
BOOTSTRAP="127.0.0.1:$PORT"
PID_FILE="$DATA_DIR/kafka.pid"
BROKER_LOG="$DATA_DIR/log/server.log"
CONSOLE_LOG="$DATA_DIR/log/console.out"

if [[ -n "${KAFKA_PYTHON:-}" ]]; then
    PYTHON="$KAFKA_PYTHON"
elif [[ -x "$REPO/.venv/bin/python" ]]; then
    PYTHON="$REPO/.venv/bin/python"
else
    PYTHON="python3"
fi

say() { echo "kafka.sh: $*" >&2; }

usage() {
    echo "usage: $(basename "$0") {fetch|checksums|up|down|status}" >&2
    exit 2
}

# The pom's hash marks a complete cache: a changed pom (new version, new jar) refetches,
# and an interrupted fetch never leaves a half-filled lib/ that looks complete.
pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

# Maven copies the pom's jars (the broker and everything it needs) into the folder $1.
maven_copy() {
    command -v mvn >/dev/null || { say "mvn not found (Maven 3 is needed to fetch the jars)"; exit 1; }
    # Maven 3.8 prints bare colour resets even with -q -B; strip them (errors still show).
    if ! (cd "$HERE/kafka" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$1" 2>&1 \
            | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2); then
        say "maven could not fetch the jars (see above)"
        exit 1
    fi
}

# "<sha256>  <name>" for every entry of the folder $1, sorted by name: the format of
# jars.sha256 (sha256sum's). An entry that is not a plain file gets "-" for a digest, so it
# never matches.
digests() {
    (
        cd "$1"
        find . -mindepth 1 -maxdepth 1 -type f -printf '%f\0' | xargs -0r sha256sum --
        find . -mindepth 1 -maxdepth 1 ! -type f -printf '-  %f\n'
    ) | LC_ALL=C sort -t ' ' -k 3
}

# Succeeds when the folder $1 holds exactly the files of jars.sha256 with exactly their
# digests; otherwise says which are missing, extra or different, and fails.
verify() {
    local problems
    problems="$(digests "$1" | awk '
        NR == FNR { want[$2] = $1; next }
        { have[$2] = $1 }
        END {
            for (n in want) if (!(n in have)) print n "  missing";
                            else if (want[n] != have[n]) print n "  different digest";
            for (n in have) if (!(n in want)) print n "  extra: not in jars.sha256";
        }' "$CHECKSUMS" - | LC_ALL=C sort)"
    [[ -z "$problems" ]] && return 0
    say "the jars in $1 are not those of $CHECKSUMS:"
    sed 's/^/    /' <<<"$problems" >&2
    return 1
}

cmd_fetch() {
    if [[ ! -s "$CHECKSUMS" ]]; then
        say "$CHECKSUMS is missing: 'kafka.sh checksums' writes it"
        exit 1
    fi
    local stamp="$CACHE_DIR/.complete"
    mkdir -p "$CACHE_DIR"
    # Fetches are serialised (make kafka-up while pytest starts its own broker); a cache is
    # read under a shared lock, so nobody reads a lib/ that a fetch is replacing.
    exec 9>"$CACHE_DIR/.lock"
    flock -s 9
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$(pom_hash)" && -d "$LIB" ]]; then
        # Checked every time (0.2 s for 57 jars), so a jar changed after the fetch, or a
        # jars.sha256 changed since, never reaches a broker.
        verify "$LIB" || {
            say "the cache or the list changed since the cache was fetched; remove" \
                "$CACHE_DIR and run 'kafka.sh fetch' again (the new fetch is checked the same way)"
            exit 1
        }
        exec 9>&-
        echo "$LIB"
        return 0
    fi
    # flock(1) drops the shared lock before it takes the exclusive one: another fetch may
    # have filled the cache in between.
    flock -x 9
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$(pom_hash)" && -d "$LIB" ]]; then
        exec 9>&-
        cmd_fetch
        return 0
    fi
    say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIB"
    local tmp="$CACHE_DIR/lib.partial"
    rm -rf "$tmp" "$stamp"
    maven_copy "$tmp"
    if ! verify "$tmp"; then
        rm -rf "$tmp"
        say "Maven fetched other jars than $CHECKSUMS lists; the cache is left incomplete." \
            "After a deliberate change to pom.xml, 'kafka.sh checksums' rewrites the list" \
            "(review its diff)"
        exit 1
    fi
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    pom_hash >"$stamp"
    exec 9>&-
    say "fetched $(find "$LIB" -name '*.jar' | wc -l) jars, all as $CHECKSUMS lists them"
    echo "$LIB"
}

# For a maintainer who changes pom.xml: what Maven fetches for it now, into jars.sha256.
# A scratch folder, never the cache: the next `fetch` fetches and checks against the result.
cmd_checksums() {
    local tmp
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/kafka-jars.XXXXXX")"
    # shellcheck disable=SC2064  # expanded now: $tmp is gone by the time the shell exits
    trap "rm -rf '$tmp'" EXIT
    say "fetching Apache Kafka $KAFKA_VERSION jars with Maven to list their digests"
    maven_copy "$tmp/lib"
    digests "$tmp/lib" >"$tmp/jars.sha256"
    if grep -q '^-  ' "$tmp/jars.sha256"; then
        say "Maven's output holds something other than plain files:"
        grep '^-  ' "$tmp/jars.sha256" >&2
        exit 1
    fi
    mv "$tmp/jars.sha256" "$CHECKSUMS"
    say "wrote $CHECKSUMS ($(wc -l <"$CHECKSUMS") jars); review 'git diff' before committing it"
}

# A pid counts only when it is alive and is the broker of this data dir, so a recycled
# pid never makes us signal somebody else's process.
broker_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $DATA_DIR/server.properties" \
        || return 1
    echo "$pid"
}

# A real check: a Kafka client asks the broker for its metadata and needs a broker in it.
answers() {
    "$PYTHON" - "$BOOTSTRAP" <<'PY' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient

admin = AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0, "socket.timeout.ms": 2000})
md = admin.list_topics(timeout=2)
sys.exit(0 if md.brokers else 1)
PY
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

write_config() {
    mkdir -p "$DATA_DIR/log" "$DATA_DIR/kraft-logs"
    sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@LOG_DIRS@|$DATA_DIR/kraft-logs|g" "$HERE/server.properties" \
        >"$DATA_DIR/server.properties"
    sed -e "s|@LOG_FILE@|$BROKER_LOG|g" "$HERE/log4j.properties" >"$DATA_DIR/log4j.properties"
}

java_opts() {
    echo "-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true" \
        "-Dlog4j.configuration=file:$DATA_DIR/log4j.properties -Dkafka.logs.dir=$DATA_DIR/log"
}

fail_with_log() {
    say "$*"
    for f in "$BROKER_LOG" "$CONSOLE_LOG"; do
        if [[ -s "$f" ]]; then
            echo "---- last lines of $f (stack frames left out) ----" >&2
            grep -v $'^\tat ' "$f" | tail -n 40 >&2 || true
        fi
    done
    exit 1
}

cmd_up() {
    command -v "$JAVA" >/dev/null \
        || { say "$JAVA not found (Java 17: deploy/local/system.sh installs Debian's)"; exit 1; }
    local pid
    if pid="$(broker_pid)"; then
        if answers; then
            echo "kafka already up on $BOOTSTRAP (pid $pid)"
            return 0
        fi
        say "broker pid $pid is alive but not answering yet; waiting"
    else
        rm -f "$PID_FILE"
        if port_in_use "$PORT" || port_in_use "$CONTROLLER_PORT"; then
            say "port $PORT or $CONTROLLER_PORT on 127.0.0.1 is taken by another process;" \
                "set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
            exit 1
        fi
        cmd_fetch >/dev/null
        write_config
        # shellcheck disable=SC2046  # java_opts is a list of words on purpose
        if [[ ! -f "$DATA_DIR/kraft-logs/meta.properties" ]]; then
            if [[ ! -s "$DATA_DIR/cluster.id" ]]; then
                "$JAVA" -cp "$LIB/*" $(java_opts) kafka.tools.StorageTool random-uuid \
                    >"$DATA_DIR/cluster.id"
            fi
            say "formatting storage in $DATA_DIR/kraft-logs (cluster $(cat "$DATA_DIR/cluster.id"))"
            "$JAVA" -cp "$LIB/*" $(java_opts) kafka.tools.StorageTool format --ignore-formatted \
                -t "$(cat "$DATA_DIR/cluster.id")" -c "$DATA_DIR/server.properties" >&2 \
                || fail_with_log "formatting storage failed"
        fi
        say "starting Apache Kafka $KAFKA_VERSION (log: $BROKER_LOG)"
        # setsid: the broker outlives this shell and a Ctrl-C in the terminal that ran it.
        # All three std streams are redirected so a caller reading our stdout never waits on it.
        # shellcheck disable=SC2046
        setsid "$JAVA" -cp "$LIB/*" $(java_opts) kafka.Kafka "$DATA_DIR/server.properties" \
            </dev/null >"$CONSOLE_LOG" 2>&1 &
        pid=$!
        echo "$pid" >"$PID_FILE"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            fail_with_log "the broker exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            fail_with_log "the broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s" \
                "(still running as pid $pid; 'kafka.sh down' stops it)"
        fi
        sleep 0.5
    done
    echo "kafka up on $BOOTSTRAP"
}

cmd_down() {
    local pid
    if ! pid="$(broker_pid)"; then
        rm -f "$PID_FILE"
        echo "kafka not running"
        return 0
    fi
    say "stopping broker pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "broker did not stop within 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PID_FILE"
    echo "kafka down"
}

cmd_status() {
    local pid
    if pid="$(broker_pid)" && answers; then
        echo "kafka up on $BOOTSTRAP (pid $pid)"
        return 0
    fi
    if [[ -n "${pid:-}" ]]; then
        echo "kafka not answering on $BOOTSTRAP (pid $pid alive)"
    else
        echo "kafka not running"
    fi
    return 1
}

[[ $# -eq 1 ]] || usage
case "$1" in
    fetch) cmd_fetch ;;
    checksums) cmd_checksums ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) usage ;;
esac
