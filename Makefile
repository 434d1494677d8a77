# The interpreter that builds .venv: Debian's, at system.lock's build (system.sh holds it there),
# the same on every machine whatever python3 it has first on PATH.
PY ?= /usr/bin/python3.11
# The JVM that runs Maven and the Kafka broker (kafka.sh, the tests' broker, the demo's):
# Debian's OpenJDK 17 at system.lock's build (system.sh holds it there), whatever JAVA_HOME
# or first java on PATH the machine has; exported, since Maven and kafka.sh read JAVA_HOME.
export JAVA_HOME := /usr/lib/jvm/java-17-openjdk-$(shell dpkg --print-architecture 2>/dev/null || echo amd64)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT := out
CATALOG := examples/catalog.yaml

.PHONY: setup setup-testcontainers system venv-python lock lint format test demo demo-offline bench schemas kafka-up kafka-down clean

## setup: system packages (deploy/local/system.sh), .venv exactly as uv.lock (requirements.txt), Kafka jars
setup: system venv-python $(STAMP)

## system: the Debian packages the tests and the demo need (installs them as root), and
## their versions checked (PY: the Python that builds .venv; JVM: the Java that runs Maven and
## the broker)
system:
	PY=$(PY) JVM=$(JAVA_HOME) bash deploy/local/system.sh

## venv-python: a .venv built by another interpreter than PY (made before PY was Debian's,
## or before system.sh moved it to the lock's build) is removed, so that setup builds it anew
venv-python:
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print(sys.version)')" != \
		"$$($(PY) -c 'import sys; print(sys.version)')" ]; then \
		echo "make: $(VENV) runs another Python than $(PY) ($$($(BIN)/python -V)): building it again"; \
		rm -rf $(VENV); fi

# --no-deps: the lock is the whole environment, so nothing resolves at install time;
# --require-hashes: every file installed is the one the lock names; --only-binary=:all:: a
# locked wheel or nothing, never a source build, whose build backend pip would resolve
# itself (the newest, without hashes).
$(STAMP): requirements.txt pyproject.toml deploy/local/kafka/pom.xml deploy/local/kafka/jars.sha256
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	bash deploy/local/kafka.sh fetch >/dev/null
	touch $(STAMP)

## setup-testcontainers: also the testcontainers group (KAFKA_PROVIDER=testcontainers, which
## needs a Docker engine), exactly as uv.lock has it (requirements-testcontainers.txt)
setup-testcontainers: setup
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: -r requirements-testcontainers.txt
	$(BIN)/python -m pip check

## lock: re-resolve uv.lock from pyproject.toml (a deliberate, reviewed change): the direct
## dependencies at the exact versions pyproject pins by hand; the transitive ones keep today's
## pins where they still fit, and `make lock UPGRADE=--upgrade` moves them, both against the
## index as of pyproject's [tool.uv] exclude-newer (the same result on any machine, any day).
## pyproject.toml's pins of the transitive ones (deploy/local/lock_closure.py: emptied before
## the resolution, written from its result after it, so that an install reading pyproject
## alone resolves nothing either) follow, and the lock records them. Then
## export it as requirements.txt (what pip installs here, hashes included),
## requirements-runtime.txt (the image's: the runtime part, the same versions),
## requirements-build.txt (what builds the engine in the image: setuptools, wheel) and
## requirements-testcontainers.txt (the opt-in testcontainers group alone). When the build
## group's versions move, pyproject's [build-system] requires must name them (test_lock.py).
lock:
	test -x $(BIN)/uv || $(MAKE) setup
	$(BIN)/python deploy/local/lock_closure.py --strip
	$(BIN)/uv lock --python 3.11 $(UPGRADE)
	$(BIN)/python deploy/local/lock_closure.py --write
	$(BIN)/uv lock --python 3.11
	$(BIN)/uv export --frozen --no-emit-project --all-extras --all-groups --no-group testcontainers -q -o requirements.txt
	$(BIN)/uv export --frozen --no-emit-project --no-dev -q -o requirements-runtime.txt
	$(BIN)/uv export --frozen --no-emit-project --only-group build -q -o requirements-build.txt
	$(BIN)/uv export --frozen --no-emit-project --only-group testcontainers -q -o requirements-testcontainers.txt

## lint: ruff, formatting, mypy and schema freshness
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/rating-engine schemas --check

## format: apply ruff fixes and formatting
format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## test: lint, then the whole test suite (starts its own Kafka broker)
test: lint
	$(BIN)/python -m pytest

## demo: the whole system on one machine: broker, topics, worker, sink, CDRs, summary
demo: setup
	$(BIN)/rating-engine demo --catalog $(CATALOG) --out $(OUT)/demo

## demo-offline: the same kind of CDR stream rated in process, no Kafka
demo-offline: setup
	rm -rf $(OUT)/offline && mkdir -p $(OUT)/offline
	$(BIN)/rating-engine catalog check $(CATALOG)
	$(BIN)/rating-engine generate --catalog $(CATALOG) --sims 5000 --cdrs 300000 --seed 7 \
		--out $(OUT)/offline/cdrs.jsonl --commands-out $(OUT)/offline/commands.jsonl
	$(BIN)/rating-engine rate --catalog $(CATALOG) --input $(OUT)/offline/cdrs.jsonl \
		--commands $(OUT)/offline/commands.jsonl --events-out $(OUT)/offline/events.jsonl \
		--rejected-out $(OUT)/offline/rejected.jsonl --progress \
		--store sqlite:///$(OUT)/offline/events.db --clickhouse chdb:///$(OUT)/offline/clickhouse

## bench: the benchmarks in benchmarks/, tables on stdout, JSON in benchmarks/results/
bench: setup
	rm -f benchmarks/results/*.json benchmarks/results/summary.md
	$(BIN)/python benchmarks/floor.py
	$(BIN)/python benchmarks/rate_core.py
	$(BIN)/python benchmarks/instructions.py
	$(BIN)/python benchmarks/stream.py
	$(BIN)/python benchmarks/provision.py
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/projections.py
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/replay_stream.py
	$(BIN)/python benchmarks/wallet_memory.py
	$(BIN)/python benchmarks/snapshots.py
	$(BIN)/python benchmarks/catalog_memory.py
	$(BIN)/python benchmarks/million.py
	$(BIN)/python benchmarks/report.py --out benchmarks/results/summary.md

## schemas: regenerate schemas/ from the code
schemas: setup
	$(BIN)/rating-engine schemas

## kafka-up / kafka-down: a local single-node broker on 127.0.0.1:19092
kafka-up:
	bash deploy/local/kafka.sh up

kafka-down:
	bash deploy/local/kafka.sh down

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis
