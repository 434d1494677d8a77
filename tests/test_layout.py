"""The shape of the shipped package, checked so that it cannot drift back.

- Shipped code (everything under ``engine/``) never imports a test helper: those live in
  ``tests/`` (``tests/support/`` for the ones the benchmarks share), and a wheel of
  ``engine`` must work without them. Read from the import statements (ast), lazy imports
  inside functions included.
- A module stays under ``MAX_MODULE_LINES`` and a function under ``MAX_FUNCTION_LINES``,
  so that each one can be read whole.
- Tests mirror the package: each module with logic has its test module, the mirror or the
  ones ``TESTED_BY`` names, and that test module imports it (see below).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "engine"
TESTS = REPO / "tests"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# No exemptions: a module or function that grows past its limit is split, so that each
# can be read in one sitting.

# Third-party packages that only the tests install (the ``dev`` extra).
TEST_ONLY_DISTRIBUTIONS = {"pytest", "_pytest", "hypothesis"}


def helper_roots() -> set[str]:
    """The names a test helper is imported by: ``tests`` itself, each package and module
    directly under it (``support``, ``conftest``, ...), and the test-only distributions."""
    roots = {"tests", *TEST_ONLY_DISTRIBUTIONS}
    for path in TESTS.iterdir():
        if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py":
            roots.add(path.stem)
    return roots


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = [] if node.level == 0 else package.split(".")[: -(node.level - 1) or None]
            if node.module:
                yield node.lineno, ".".join([*base, node.module])
            else:  # ``from . import x``: x is a module of the package
                for alias in node.names:
                    yield node.lineno, ".".join([*base, alias.name])


def helper_imports(root: Path, forbidden: set[str]) -> list[str]:
    """``file:line imports name`` for each import under ``root`` of a test helper."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for line, name in imported_modules(path, root):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(root.parent)}:{line} imports {name}")
    return found


def test_shipped_code_never_imports_test_helpers() -> None:
    assert helper_imports(ENGINE, helper_roots()) == []
    assert not (ENGINE / "testing").exists(), "test helpers belong in tests/support/"


def test_the_import_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The check itself: a helper imported inside a function or with ``from`` is found;
    the package's own relative imports are resolved into it and pass."""
    pkg = tmp_path / "engine"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "lazy.py").write_text("def f() -> None:\n    import support.postgres\n")
    (pkg / "sub" / "climb.py").write_text("from ... import tests\nfrom ..ok import x\n")
    (pkg / "ok.py").write_text("import os\nfrom . import sub\n")
    found = helper_imports(pkg, {"support", "tests"})
    assert found == [
        "engine/sub/climb.py:1 imports tests",
        "engine/sub/lazy.py:2 imports support.postgres",
    ]


def engine_files() -> Iterator[tuple[str, Path]]:
    for path in sorted(ENGINE.rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path


def test_no_module_is_too_long() -> None:
    long = {
        name: lines
        for name, path in engine_files()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_too_long() -> None:
    long = {}
    for name, path in engine_files():
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{name}:{node.lineno} {node.name}"] = lines
    assert long == {}


# --- Tests mirror the package -------------------------------------------------------------
#
# Each module of ``engine/`` with logic has a test module that tests it: its mirror
# (``engine/<layer>/<module>.py`` -> ``tests/<layer>/test_<module>.py``, ``engine/<module>.py``
# -> ``tests/test_<module>.py``), or the test modules ``TESTED_BY`` names, where a behaviour
# that spans modules is tested as a whole. Either way the test module imports the module
# (below: ``imports_module``), so that neither a mirror nor an entry of the map can name a
# module that is not tested there.
#
# A module has logic when it defines a function (a method or a property included). Exempt,
# as the rule says: modules of constants, type aliases and field-only classes (the events,
# the table schemas: data, tested by the code that reads it); and each package's
# ``__init__.py`` and ``__main__.py``, its door, tested through the package's name.

TESTED_BY: dict[str, tuple[str, ...]] = {
    # a wallet's chunks, written and read back through its snapshot records
    "engine/stream/chunks.py": ("tests/stream/test_snapshot_chunks.py",),
    # The catalog loader's parts that loading whole files exercises best:
    # issues keep file, line and path, and pickle (the error crosses processes)
    "engine/catalog/errors.py": ("tests/catalog/test_loader.py",),
    # the contract's limits beside the other bounds on input (README's table cites the file)
    "engine/catalog/limits.py": ("tests/catalog/test_bounds.py",),
    # the summary of the example catalog as loaded
    "engine/catalog/summary.py": ("tests/catalog/test_loader.py",),
    # hostile YAML: alias bombs, deep nesting, oversized files
    "engine/catalog/yaml_source.py": ("tests/catalog/test_bounds.py",),
    #
    # The domain: structs whose few methods are read through the rules that use them.
    # Plan.version_at on the loaded example; build_catalog's index
    "engine/domain/catalog.py": ("tests/catalog/test_loader.py", "tests/domain/test_index.py"),
    # a CDR's key: its events' ids, a retried CDR recognised
    "engine/domain/cdr.py": ("tests/domain/test_usage.py",),
    # named for what a close does (true-ups); docs/catalog.md cites the file
    "engine/domain/closing.py": ("tests/domain/test_pool_true_up.py",),
    # a command's key: its events' ids, as account decides each command
    "engine/domain/commands.py": ("tests/domain/test_account.py",),
    # the Draft each rule is applied to; splits through the index's tables
    "engine/domain/draft.py": ("tests/domain/test_charges.py", "tests/domain/test_index.py"),
    # the grants' burn order and the balance
    "engine/domain/state.py": ("tests/domain/test_grants.py",),
    # decide/step, the domain's door: every rule is tested through them
    "engine/domain/wallet.py": ("tests/domain/test_properties.py", "tests/domain/test_usage.py"),
    # zone_of beside the rates it selects
    "engine/domain/zones.py": ("tests/domain/test_rating.py",),
    #
    # Local brokers: the providers side by side, the jar broker's pieces that need no JVM
    "engine/local/base.py": ("tests/local/test_broker.py",),
    "engine/local/jar_broker.py": ("tests/local/test_broker.py",),
    #
    # Offline: the pipeline is the flow's offline caller; poison records go through it
    "engine/offline/pipeline.py": ("tests/test_flow.py", "tests/offline/test_poison.py"),
    # rate_all into a store, then replay against a fresh run
    "engine/offline/run.py": ("tests/offline/test_replay.py",),
    #
    # ClickHouse: connect and its errors, against embedded chDB
    "engine/projections/clickhouse.py": (
        "tests/projections/test_projector.py",
        "tests/projections/test_query_readonly.py",
    ),
    # the read-only check beside every abuse of `query` it refuses
    "engine/projections/readonly.py": ("tests/projections/test_query_readonly.py",),
    # secrets from the environment or files: a sink against a PostgreSQL that demands a
    # password; the manifests that provide them
    "engine/secrets.py": ("tests/stream/test_secrets.py", "tests/deploy/test_manifest_secrets.py"),
    #
    # The event store: one contract suite runs against both backends (through open_store);
    # these import the interface, the chain and each backend as well
    "engine/store/base.py": ("tests/store/test_contract.py",),
    "engine/store/chain.py": ("tests/store/test_keyed_chain.py", "tests/store/test_contract.py"),
    # a lost connection, reconnected
    "engine/store/postgres.py": ("tests/store/test_reconnect.py",),
    # stores written by earlier versions, read today
    "engine/store/sqlite.py": ("tests/store/test_stored_v1.py",),
    #
    # The stream, on a real broker:
    "engine/stream/acls.py": ("tests/stream/test_kafka_security.py",),
    "engine/stream/admin.py": ("tests/stream/test_topics.py",),
    "engine/stream/topics_check.py": ("tests/stream/test_topics.py",),
    # the agents built as the worker builds them; the flow they call
    "engine/stream/agents.py": ("tests/stream/test_fenced_worker.py",),
    "engine/stream/aiokafka_compat.py": (
        "tests/stream/test_following.py",
        "tests/stream/test_gathering.py",
    ),
    "engine/stream/versions.py": ("tests/stream/test_faust_compat.py",),
    # the rate stage's one-input path: the one flow's callers, and a fenced worker deciding
    "engine/stream/rater.py": ("tests/test_flow.py",),
    # the metrics scraped with the health probes; the dashboard names only exported ones
    "engine/stream/metrics.py": ("tests/stream/test_health.py", "tests/deploy/test_dashboard.py"),
    # the publisher's pieces, tested as `publish` uses them
    "engine/stream/pacing.py": ("tests/stream/test_publish.py",),
    "engine/stream/producer_id.py": ("tests/stream/test_publish.py",),
    "engine/stream/publisher.py": ("tests/stream/test_publish.py",),
    # snapshots written, placed and checked against the log before being trusted
    "engine/stream/snapshots.py": (
        "tests/stream/test_snapshotter.py",
        "tests/stream/test_snapshot_verification.py",
    ),
}


def has_logic(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    return any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree))


def mirror_of(name: str) -> str:
    """``engine/a/b.py`` -> ``tests/a/test_b.py``; ``engine/b.py`` -> ``tests/test_b.py``."""
    *layers, module = Path(name).relative_to("engine").parts
    return Path("tests", *layers, f"test_{module}").as_posix()


def modules_with_logic(root: Path = REPO) -> list[str]:
    return [
        path.relative_to(root).as_posix()
        for path in sorted((root / "engine").rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py") and has_logic(path)
    ]


def reexported(root: Path, package: str) -> dict[str, str]:
    """Name -> module of each name a package's ``__init__.py`` imports from its modules."""
    init = root.joinpath(*package.split("."), "__init__.py")
    if not init.exists():
        return {}
    names = {}
    for node in ast.walk(ast.parse(init.read_text(), str(init))):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = node.module if node.level == 0 else ".".join([*base, node.module])
            for alias in node.names:
                names[alias.asname or alias.name] = module
    return names


def imports_module(test: Path, module: str, root: Path = REPO) -> bool:
    """Whether ``test`` imports ``module`` (``engine.a.b``): ``import engine.a.b``,
    ``from engine.a.b import x``, ``from engine.a import b``, or ``from engine.a import x``
    where ``engine/a/__init__.py`` imports ``x`` from ``b``. Lazy imports included."""
    package, _, last = module.rpartition(".")
    for node in ast.walk(ast.parse(test.read_text(), str(test))):
        if isinstance(node, ast.Import) and any(a.name == module for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == module:
                return True
            if node.module == package:
                again = reexported(root, package)
                if any(a.name == last or again.get(a.name) == module for a in node.names):
                    return True
    return False


def dotted(name: str) -> str:
    return name.removesuffix(".py").replace("/", ".")


def test_every_module_with_logic_has_a_test_module() -> None:
    untested = [
        name
        for name in modules_with_logic()
        if not (REPO / mirror_of(name)).exists() and name not in TESTED_BY
    ]
    assert untested == []


def test_each_mirror_imports_its_module() -> None:
    """A test module named for a module is about it: a renamed module leaves no stale one."""
    astray = [
        mirror
        for name in modules_with_logic()
        if (REPO / (mirror := mirror_of(name))).exists()
        and not imports_module(REPO / mirror, dotted(name))
    ]
    assert astray == []


def test_the_map_cannot_rot() -> None:
    """Each entry: a module with logic and no mirror (a mirror replaces the entry), and
    test modules that exist and import it."""
    logic = set(modules_with_logic())
    stale = [n for n in TESTED_BY if n not in logic or (REPO / mirror_of(n)).exists()]
    assert stale == []
    wrong = [
        f"{name}: {test}"
        for name, tests in TESTED_BY.items()
        for test in tests
        if not (REPO / test).is_file() or not imports_module(REPO / test, dotted(name))
    ]
    assert wrong == []
    assert all(TESTED_BY.values()), "each entry names at least one test module"


def test_the_import_rule_is_exact(tmp_path: Path) -> None:
    """The rule itself: the module, a name from it, the module from its package, a name its
    package re-exports; not a sibling's name, nor a module merely under the same prefix."""
    pkg = tmp_path / "engine" / "layer"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .mod import thing\nfrom .other import else_\n")
    test = tmp_path / "test_x.py"
    hits = [
        "import engine.layer.mod",
        "from engine.layer.mod import thing",
        "from engine.layer import mod",
        "from engine.layer import thing",
        "def f() -> None:\n    from engine.layer.mod import thing\n",
    ]
    misses = [
        "import engine.layer",
        "from engine.layer import else_",
        "from engine.layer.module import x",
        "import engine.layer.mod.deeper",
        "from engine import layer",
    ]
    for text in hits + misses:
        test.write_text(text + "\n")
        assert imports_module(test, "engine.layer.mod", tmp_path) is (text in hits), text


def test_a_module_of_data_needs_no_test_module(tmp_path: Path) -> None:
    (tmp_path / "engine" / "sub").mkdir(parents=True)
    data = "import msgspec\nX = 1\nclass E(msgspec.Struct):\n    a: int\n"
    (tmp_path / "engine" / "sub" / "data.py").write_text(data)
    (tmp_path / "engine" / "sub" / "logic.py").write_text("class C:\n    def f(self): ...\n")
    (tmp_path / "engine" / "sub" / "__init__.py").write_text("def f(): ...\n")
    assert modules_with_logic(tmp_path) == ["engine/sub/logic.py"]
    assert mirror_of("engine/sub/logic.py") == "tests/sub/test_logic.py"
    assert mirror_of("engine/codec.py") == "tests/test_codec.py"
